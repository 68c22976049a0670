"""Connections, external programs and throwaway clusters: the project's ways out of Python."""
