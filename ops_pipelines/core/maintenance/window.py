"""The monthly maintenance window, and the work only allowed inside it (VACUUM FULL, full reindex).

The window opens at each tick of `schedules.maintenance_window` that falls in the first seven days
of the month (cron cannot say "first Saturday": day-of-month and day-of-week are ORed) and lasts
`schedules.maintenance_window_length`, in the configured time zone.
"""

import datetime as dt
import time
from dataclasses import dataclass

import psycopg
from psycopg import errors, sql

from ops_pipelines import cron
from ops_pipelines.adapters.postgres import Connection, connect_db, first_line, one
from ops_pipelines.config import DatabaseConfig, OpsConfig
from ops_pipelines.errors import OpsError


class OutsideWindow(OpsError):
    """Window-only work was launched outside the window without an override."""


@dataclass(frozen=True)
class WindowState:
    inside: bool
    opened_at: dt.datetime | None  # of the window we are in
    next_opens_at: dt.datetime


def window_state(config: OpsConfig, now: dt.datetime) -> WindowState:
    expression, zone = config.schedules.maintenance_window, config.timezone
    length = config.schedules.maintenance_window_length.to_timedelta()
    opened = None
    for tick in cron.ticks(now, expression, zone, ascending=False):
        if tick <= now - length - dt.timedelta(days=1):
            break
        if tick.day <= 7 and tick <= now < tick + length:
            opened = tick
            break
    upcoming = (t for t in cron.ticks(now, expression, zone) if t > now and t.day <= 7)
    return WindowState(opened is not None, opened, next(upcoming))


def require_window(config: OpsConfig, now: dt.datetime, override: bool) -> WindowState:
    state = window_state(config, now)
    if not state.inside and not override:
        raise OutsideWindow(
            f"outside the maintenance window (first week, {config.schedules.maintenance_window} for "
            f"{config.schedules.maintenance_window_length}, {config.timezone}); the next opens "
            f"{state.next_opens_at:%Y-%m-%d %H:%M %Z}. Set override_window: true in the launchpad to run now"
        )
    return state


@dataclass(frozen=True)
class WindowAction:
    target: str
    statement: str
    bytes_before: int | None
    bytes_after: int | None
    seconds: float
    skipped: str | None = None


def run_window_work(db: DatabaseConfig, log=lambda message: None) -> list[WindowAction]:
    """VACUUM (FULL, ANALYZE) of each listed table, then REINDEX DATABASE when configured. These
    take exclusive locks for their whole duration: that is why they wait for the window."""
    actions = []
    with connect_db(db, "maintenance_window", autocommit=True) as conn:
        for schema, table in db.maintenance_window.vacuum_full_tables:
            ident = sql.Identifier(schema, table)
            actions.append(_timed(conn, f"{schema}.{table}", sql.SQL("VACUUM (FULL, ANALYZE) {}").format(ident), ident))
            log(
                f"{actions[-1].target}: "
                f"{actions[-1].skipped or f'{actions[-1].bytes_before:,} -> {actions[-1].bytes_after:,} bytes'}"
            )
        if db.maintenance_window.full_reindex:
            dbname = one(conn.execute("SELECT current_database() AS d"))["d"]
            actions.append(_timed(conn, dbname, sql.SQL("REINDEX DATABASE {}").format(sql.Identifier(dbname)), None))
            log(f"{dbname}: {actions[-1].skipped or 'reindexed'}")
    return actions


def _timed(conn: Connection, target: str, statement: sql.Composed, ident: sql.Identifier | None) -> WindowAction:
    size = (
        sql.SQL("SELECT pg_total_relation_size({}::regclass) AS b").format(sql.Literal(ident.as_string(conn)))
        if ident
        else None
    )
    before = one(conn.execute(size))["b"] if size is not None else None
    started = time.monotonic()
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        why = (
            "locked by another session (lock_timeout)" if isinstance(exc, errors.LockNotAvailable) else first_line(exc)
        )
        return WindowAction(
            target, statement.as_string(conn), before, None, time.monotonic() - started, skipped=f"skipped: {why}"
        )
    after = one(conn.execute(size))["b"] if size is not None else None
    return WindowAction(target, statement.as_string(conn), before, after, time.monotonic() - started)
