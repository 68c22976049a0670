"""Jobs, schedules and sensors: small and declarative; sensors only read listings and request runs."""
