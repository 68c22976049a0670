"""Connections with safe defaults: every session says who it is and how long it may wait.

Every session the project opens sets `application_name = 'ops_pipelines'`, a `statement_timeout`
and a `lock_timeout`, so maintenance never blocks the ERP indefinitely. Driver errors become
`DatabaseError` with a one-line cause that names the server, never the password.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from ops_pipelines.errors import DatabaseError, DatabaseUnavailable, LockTimeout
from ops_pipelines.units import Duration, parse_duration

APPLICATION_NAME = "ops_pipelines"
SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def read_sql(name: str) -> str:
    """The text of `sql/<name>`: every statement longer than a line lives there."""
    path = SQL_DIR / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatabaseError(f"cannot read {path}: {exc.strerror}") from None


def describe_dsn(dsn: str) -> str:
    """`user@host:port/dbname`, for logs and metadata: never the password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable dsn>"
    host = params.get("host") or params.get("hostaddr") or "local socket"
    port = params.get("port") or "5432"
    user = params.get("user") or "default user"
    return f"{user}@{host}:{port}/{params.get('dbname') or '(default db)'}"


def with_dbname(dsn: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return make_conninfo(dsn, dbname=dbname)


@contextlib.contextmanager
def connect(
    dsn: str,
    *,
    statement_timeout: Duration | str = "1 min",
    lock_timeout: Duration | str = "5s",
    connect_timeout: Duration | str = "10s",
    autocommit: bool = False,
) -> Iterator[psycopg.Connection]:
    """A connection whose rows are dicts, closed on exit; rolled back unless the body committed."""
    statement_ms = _milliseconds(statement_timeout)
    lock_ms = _milliseconds(lock_timeout)
    connect_s = max(1, round(_milliseconds(connect_timeout) / 1000))
    where = describe_dsn(dsn)
    try:
        conn = psycopg.connect(
            dsn,
            application_name=APPLICATION_NAME,
            connect_timeout=connect_s,
            autocommit=True,
            row_factory=dict_row,
        )
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"cannot connect to {where}: {first_line(exc)}") from None
    try:
        # set_config, not SET: SET cannot take parameters. Session-level (false), so they hold
        # for every later transaction on this connection.
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false),"
            " set_config('idle_in_transaction_session_timeout', %s, false)",
            (f"{statement_ms}ms", f"{lock_ms}ms", f"{max(statement_ms, 60_000)}ms"),
        )
        conn.autocommit = autocommit
        yield conn
    except psycopg.errors.LockNotAvailable as exc:
        raise LockTimeout(f"{where}: {first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise DatabaseError(f"{where}: {first_line(exc)}") from exc
    finally:
        conn.close()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _milliseconds(value: Duration | str) -> int:
    duration = parse_duration(value) if isinstance(value, str) else value
    return int(duration.to_timedelta().total_seconds() * 1000)
