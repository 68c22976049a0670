"""Times as people read them: in the config's time zone. The one formatter for the UI's metadata,
the report and the alerts (core/ may use it too: it has no Dagster in it)."""

import datetime as dt
import functools
import zoneinfo


@functools.cache
def zone(timezone: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(timezone)


def local_time(moment: dt.datetime | None, timezone: str, *, with_zone: bool = True) -> str | None:
    """`2026-11-22 09:30 +07` (or without the zone, where a heading already names it); None stays None."""
    if moment is None:
        return None
    return moment.astimezone(zone(timezone)).strftime("%Y-%m-%d %H:%M %Z" if with_zone else "%Y-%m-%d %H:%M")


def local_day(moment: dt.datetime, timezone: str) -> str:
    """`2026-11-22`: the configured zone's calendar day of `moment`."""
    return moment.astimezone(zone(timezone)).strftime("%Y-%m-%d")


def local_iso(timestamp: float, timezone: str) -> str:
    """ISO 8601 with the zone's offset, to the second (machine-readable fields of alerts)."""
    return dt.datetime.fromtimestamp(timestamp, zone(timezone)).isoformat(timespec="seconds")
