"""How the report writes times, ages, durations, counts and cells."""

import datetime as dt

from ops_pipelines.core.backups.catalog import stamp_time
from ops_pipelines.core.backups.recovery_status import RecoveryStatus
from ops_pipelines.core.report.model import DatabaseReport
from ops_pipelines.localtime import local_time


def local(moment: dt.datetime | None, timezone: str) -> str:
    return local_time(moment, timezone, with_zone=False) or "never"


def age_text(age: dt.timedelta | None) -> str:
    if age is None:
        return "never"
    hours = age.total_seconds() / 3600
    if age.total_seconds() < 60:
        return f"{age.total_seconds():.0f} s"
    if hours < 1:
        return f"{age.total_seconds() / 60:.0f} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def verified_text(status: RecoveryStatus, now: dt.datetime) -> str:
    if status.verified is None:
        return "never"
    return f"a backup {age_text(now - stamp_time(status.verified.backup))} old"


def failed_text(db: DatabaseReport) -> str:
    warnings = sum(1 for c in db.failed_checks if c.severity == "warning")
    return f"{len(db.failed_checks)}" + (f" ({warnings} warning{'s' if warnings > 1 else ''})" if warnings else "")


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def percent(value) -> str:
    return "–" if value is None else f"{float(value):.1f}%"


def count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def plain(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def cell(value: object, tz: str) -> object:
    return local(value, tz) if isinstance(value, dt.datetime) else value
