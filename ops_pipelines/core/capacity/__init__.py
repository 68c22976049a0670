"""Capacity: samples of size and traffic, and the forecast of when a volume fills."""
