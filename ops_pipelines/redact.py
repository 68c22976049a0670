"""Masking secrets in text that may reach a person: error messages, logs, metadata.

A connection URI's password (`postgresql://ops:***@db/erp`), a key=value password
(`password=***`), and everything after the host of an http(s) URL (webhook URLs carry their token
in the path or query: `https://hooks.slack.com/***`).
"""

import re

# `scheme:/` too: a URI pasted where a path goes comes back from pathlib with one slash.
_URI_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*:/+[^:/@\s'\"]*:)[^@\s'\"]*@", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(?P<head>\b(?:ssl)?password\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_SQL_PASSWORD = re.compile(r"(?i)(password\s+)'(?:[^']|'')*'")
_HTTP_PATH = re.compile(r"(?P<head>\bhttps?://[^/\s'\"?#]+)[/?#][^\s'\"]*", re.IGNORECASE)

MASK = "***"


def mask_secrets(text: str) -> str:
    text = _URI_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", text)
    text = _KV_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}", text)
    return _HTTP_PATH.sub(lambda m: f"{m.group('head')}/{MASK}", text)


def mask_passwords(text: str) -> str:
    """`ALTER ROLE x PASSWORD 'secret'` as `... PASSWORD '***'`: statement texts (pg_stat_activity,
    pg_stat_statements) reach the report and the health checks."""
    return _SQL_PASSWORD.sub(r"\1'***'", text)
