"""Daily traffic and errors of a database — transactions, rollbacks, deadlocks, temporary files —
from the cumulative pg_stat_database counters each capacity sample keeps.

The difference between two consecutive samples is what happened between them, counted on the
local day of the later one. Across a statistics reset (or a server restart that lost them) the
counters start again from zero, so that interval is left out rather than counted wrong.
"""

import datetime as dt
import zoneinfo
from dataclasses import dataclass

import psycopg

from ops_pipelines.adapters.postgres import connect, read_sql


@dataclass
class DayTraffic:
    day: dt.date  # in the configured time zone
    transactions: int = 0  # commits + rollbacks
    rollbacks: int = 0
    deadlocks: int = 0
    temp_bytes: int = 0

    @property
    def rollback_ratio(self) -> float:
        return self.rollbacks / self.transactions if self.transactions else 0.0


def read_traffic(metrics_dsn: str, database: str, since: dt.datetime, timezone: str) -> list[DayTraffic]:
    with connect(metrics_dsn, statement_timeout="1 min", lock_timeout="10s", purpose="report") as conn:
        try:
            rows = conn.execute(read_sql("traffic_history.sql"), {"database": database, "since": since}).fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
            return []  # no sample taken since the schema has these columns: nothing to show yet
    return daily_traffic(rows, timezone)


def daily_traffic(rows: list[dict], timezone: str) -> list[DayTraffic]:
    zone = zoneinfo.ZoneInfo(timezone)
    days: dict[dt.date, DayTraffic] = {}
    for before, after in zip(rows, rows[1:], strict=False):  # consecutive pairs
        deltas = {name: after[name] - before[name] for name in ("commits", "rollbacks", "deadlocks", "temp_bytes")}
        if after["stats_reset"] != before["stats_reset"] or min(deltas.values()) < 0:
            continue  # the counters restarted in between
        day = after["sampled_at"].astimezone(zone).date()
        entry = days.setdefault(day, DayTraffic(day))
        entry.transactions += deltas["commits"] + deltas["rollbacks"]
        entry.rollbacks += deltas["rollbacks"]
        entry.deadlocks += deltas["deadlocks"]
        entry.temp_bytes += deltas["temp_bytes"]
    return [days[day] for day in sorted(days)]


def week_over_week(days: list[DayTraffic], today: dt.date) -> tuple[DayTraffic, DayTraffic]:
    """Totals of the last 7 days (to `today`) and of the 7 before."""
    this, last = DayTraffic(today), DayTraffic(today - dt.timedelta(days=7))
    for entry in days:
        age = (today - entry.day).days
        target = this if 0 <= age < 7 else last if 7 <= age < 14 else None
        if target is not None:
            target.transactions += entry.transactions
            target.rollbacks += entry.rollbacks
            target.deadlocks += entry.deadlocks
            target.temp_bytes += entry.temp_bytes
    return this, last
