"""Cron expressions, read exactly as Dagster's scheduler reads them.

The one module that imports Dagster's private `dagster._utils.schedules` (import-linter allows only
this edge). Why private: Dagster has no public cron parser or iterator, and ours must agree with the
scheduler that runs the schedules — a config accepted here must be a schedule Dagster accepts, and
the maintenance window computed here must open when Dagster's tick fires (day-of-month/day-of-week
OR semantics, time zones, DST). Re-check both names when upgrading Dagster (the test suite uses them).
"""

import datetime as dt
from collections.abc import Iterator

from dagster._utils.schedules import cron_string_iterator, is_valid_cron_string


def is_valid(expression: str) -> bool:
    return is_valid_cron_string(expression)


def ticks(start: dt.datetime, expression: str, timezone: str, *, ascending: bool = True) -> Iterator[dt.datetime]:
    """The schedule's fire times from `start` onwards (or backwards), in `timezone`."""
    return cron_string_iterator(start.timestamp(), expression, timezone, ascending=ascending)
