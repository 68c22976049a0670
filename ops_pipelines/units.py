"""Durations ("26h", "365 days", "6 months") and sizes ("500GB", "1.5 GiB") as written in config.

Months and years are calendar units, kept apart from seconds: "12 months" before 31 March is
31 March of the previous year, not 360 or 372 days earlier. PostgreSQL intervals work the same way.
"""

import datetime as dt
import re
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta

_SECONDS_PER_UNIT = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_MONTHS_PER_UNIT = {"month": 1, "months": 1, "year": 12, "years": 12}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*", re.IGNORECASE)

_BYTES_PER_UNIT = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Duration:
    """A span of calendar months plus a number of seconds, like a PostgreSQL interval."""

    months: int
    seconds: float
    text: str

    def __str__(self) -> str:
        return self.text

    @property
    def has_calendar_part(self) -> bool:
        return self.months != 0

    def to_timedelta(self) -> dt.timedelta:
        """Fixed-length durations only (timeouts, max ages): months have no fixed length."""
        if self.months:
            raise ValueError(f'"{self.text}" has months or years, which have no fixed length')
        return dt.timedelta(seconds=self.seconds)

    def before(self, moment: dt.datetime) -> dt.datetime:
        """The instant this duration before `moment`, months counted on the calendar."""
        return moment - relativedelta(months=self.months) - dt.timedelta(seconds=self.seconds)

    def to_pg_interval(self) -> str:
        """Text PostgreSQL reads as the same interval (for `now() - %s::interval`)."""
        return f"{self.months} months {self.seconds} seconds"


def parse_duration(value: object) -> Duration:
    """'26h', '365 days', '1 day 12 hours', '6 months', '30s'. A bare number has no unit: refused."""
    if isinstance(value, Duration):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'expected a duration like "365 days" or "26h", got {value!r}')
    text = value.strip()
    months, seconds, pos = 0, 0.0, 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f'expected a duration like "365 days" or "26h", got "{text}"')
        number, unit = float(match.group(1)), match.group(2).lower()
        if unit in _SECONDS_PER_UNIT:
            seconds += number * _SECONDS_PER_UNIT[unit]
        elif unit in _MONTHS_PER_UNIT and number.is_integer():
            months += int(number) * _MONTHS_PER_UNIT[unit]
        else:
            raise ValueError(
                f'expected a duration like "365 days" or "26h", got "{text}" '
                f"(units: s, min, h, days, weeks, months, years)"
            )
        pos = match.end()
    return Duration(months=months, seconds=seconds, text=text)


def parse_size(value: object) -> int:
    """'500GB' (10^9), '1.5 GiB' (2^30), '800MB', or a plain number of bytes. Returns bytes."""
    if isinstance(value, bool):
        raise ValueError(f'expected a size like "500GB", got {value!r}')
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match and match.group(2).lower() in _BYTES_PER_UNIT | {"": 1}:
            unit = match.group(2).lower() or "b"
            return int(float(match.group(1)) * _BYTES_PER_UNIT[unit])
    raise ValueError(f'expected a size like "500GB" or "1.5 GiB", got {value!r}')


def format_bytes(count: float) -> str:
    """Human figure for messages, metadata, charts and reports, in decimal units (1 MB = 10^6 bytes),
    the units config sizes are read in: `volume_capacity: 250MB` shows as "250.0 MB" everywhere.
    (PostgreSQL's pg_size_pretty uses binary units under the same names; we do not.)"""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")
