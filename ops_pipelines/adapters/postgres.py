"""Connections with safe defaults: every session says who it is and how long it may wait.

Every session the project opens sets `application_name = 'ops_pipelines'` (or `ops_pipelines/<purpose>`),
a `statement_timeout` and a `lock_timeout`, so maintenance never blocks the ERP indefinitely. Driver
errors become `DatabaseError` with a one-line cause that names the server, never the password.

Only failures that can pass by themselves are `TransientError`s (the assets retry those): the server
refusing or not answering the connection, starting up or shutting down, out of connection slots, a
connection lost (SQLSTATE classes 08 and 57P0x), a lock not granted in time. A wrong password, an
unknown role or database fail at once: retrying them only repeats failed logins (which can lock the
account) for minutes.
"""

import contextlib
import functools
import re
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import LiteralString, cast

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row

from ops_pipelines.config import DatabaseConfig
from ops_pipelines.errors import DatabaseError, DatabaseUnavailable, LockTimeout
from ops_pipelines.units import Duration, parse_duration

APPLICATION_NAME = "ops_pipelines"
# Every connection returns rows as dicts (row_factory=dict_row).
Connection = psycopg.Connection[DictRow]
# libpq's own words when the server could not be reached, or said it cannot take us *now*. The
# server's FATAL messages follow its lc_messages: an unrecognised one counts as permanent (fails fast).
_TRANSIENT_CONNECT = re.compile(
    r"connection refused|timeout expired|timed out|no route to host|network is unreachable|connection reset"
    r"|server closed the connection unexpectedly|the database system is (starting up|shutting down|in recovery mode"
    r"|not yet accepting connections|not accepting connections)|too many clients|remaining connection slots",
    re.IGNORECASE,
)


@functools.cache
def _sql_root() -> Traversable:
    """Installed from a wheel: the package data `ops_pipelines.sql` (pyproject maps sql/ there). In a
    source checkout or an editable install, that package does not exist: sql/ beside the package is
    the same folder the wheel is built from."""
    try:
        return resources.files("ops_pipelines.sql")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "sql"


def read_sql(name: str) -> LiteralString:
    """The text of `sql/<name>`: every statement longer than a line lives there."""
    path = _sql_root().joinpath(*name.split("/"))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatabaseError(f"cannot read {path}: {exc.strerror}") from None
    # psycopg takes only literal strings as queries (no data mixed into SQL): these files ship with
    # the package and take their values as parameters, so they are literals in all but name.
    return cast(LiteralString, text)


def config_sql(text: str) -> LiteralString:
    """SQL the DBA wrote in the config file (an archive rule's `where`, a sanity query, the failed-login
    query) or read from the database's own catalog (a column type): run as written, on purpose. The
    config's author holds the DSN already; values from anywhere else always go in as parameters."""
    return cast(LiteralString, text)


def one(cursor: psycopg.Cursor[DictRow]) -> DictRow:
    """The row a query that always returns one (an aggregate, a setting) returned."""
    row = cursor.fetchone()
    if row is None:
        raise DatabaseError("a query that returns one row returned none")
    return row


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
    purpose: str | None = None,
) -> Iterator[Connection]:
    """A connection whose rows are dicts, closed on exit; rolled back unless the body committed.
    `purpose` names the session in pg_stat_activity: `ops_pipelines/backup`."""
    statement_ms = _milliseconds(statement_timeout)
    lock_ms = _milliseconds(lock_timeout)
    connect_s = max(1, round(_milliseconds(connect_timeout) / 1000))
    where = describe_dsn(dsn)
    try:
        # Called on Connection[DictRow], so type checkers know the rows are dicts (row_factory below).
        conn = psycopg.Connection[DictRow].connect(
            dsn,
            application_name=f"{APPLICATION_NAME}/{purpose}" if purpose else APPLICATION_NAME,
            connect_timeout=connect_s,
            autocommit=True,
            row_factory=dict_row,
        )
    except psycopg.Error as exc:
        raise connection_error(exc, where) from None
    try:
        # set_config, not SET: SET cannot take parameters. Session-level (false), so they hold
        # for every later transaction on this connection.
        conn.execute(
            "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false),"
            " set_config('idle_in_transaction_session_timeout', %s, false)",
            (f"{statement_ms}ms", f"{lock_ms}ms", f"{max(statement_ms, 60_000)}ms"),
        )
        conn.autocommit = autocommit
        with errors_named(where):
            yield conn
    finally:
        conn.close()


def connect_db(
    db: DatabaseConfig, purpose: str, *, statement_timeout: Duration | str | None = None, autocommit: bool = False
) -> contextlib.AbstractContextManager[Connection]:
    """A session on a configured database: named `ops_pipelines/<purpose>` in pg_stat_activity (the
    DBA sees which action it belongs to), with the database's lock and connect timeouts and its
    statement timeout — or a shorter one, for a quick read."""
    return connect(
        db.dsn.get_secret_value(),
        statement_timeout=statement_timeout or db.timeouts.statement,
        lock_timeout=db.timeouts.lock,
        connect_timeout=db.timeouts.connect,
        autocommit=autocommit,
        purpose=purpose,
    )


class errors_named(contextlib.AbstractContextManager):  # noqa: N801 - used like a function, reusable
    """Driver errors inside the block become our own, naming `where`: the server the statement ran
    on. Around statements on one connection inside another connection's block, so a failure on the
    source is not reported as the archive's (the innermost `connect` would otherwise name itself).
    One instance may guard many blocks."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __exit__(self, kind, exc, traceback) -> None:
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            raise LockTimeout(f"{self.where}: {first_line(exc)}") from exc
        if isinstance(exc, psycopg.Error):
            state = exc.sqlstate or ""
            transient = state.startswith("08") or state.startswith("57P")
            raise (DatabaseUnavailable if transient else DatabaseError)(f"{self.where}: {first_line(exc)}") from exc


def connection_error(exc: psycopg.Error, where: str) -> DatabaseError:
    """A failed connection attempt as our error: transient only when it may pass by itself.
    psycopg gives no SQLSTATE for connection failures, so libpq's message is what there is to read."""
    cause = first_line(exc).removeprefix("connection failed: ")
    message = f"cannot connect to {where}: {cause}"
    return DatabaseUnavailable(message) if _TRANSIENT_CONNECT.search(str(exc)) else DatabaseError(message)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _milliseconds(value: Duration | str) -> int:
    duration = parse_duration(value) if isinstance(value, str) else value
    return int(duration.to_timedelta().total_seconds() * 1000)


def _int4(half: int) -> int:
    """An unsigned 32-bit half of a lock key as the signed int4 PostgreSQL stores it as."""
    return half - (1 << 32) if half >= 1 << 31 else half


def advisory_lock_holder(
    conn: psycopg.Connection[DictRow], key: int | tuple[int, int], *, this_database_only: bool
) -> str | None:
    """Who holds the granted advisory lock `key` (one bigint, or two int4 keys), in one line for the
    message that refuses a second run: "session pid N (application, from client, since time)", or
    None when nobody holds it any more."""
    if isinstance(key, tuple):
        classid, objid, objsubid = key[0], key[1], 2
    else:
        classid, objid, objsubid = _int4((key >> 32) & 0xFFFFFFFF), _int4(key & 0xFFFFFFFF), 1
    params = {"classid": classid, "objid": objid, "objsubid": objsubid, "this_database_only": this_database_only}
    holder = conn.execute(read_sql("advisory_lock_holder.sql"), params).fetchone()
    if holder is None:
        return None
    application = holder["application_name"] or "no application_name"
    since = f"{holder['backend_start']:%Y-%m-%d %H:%M:%S %Z}"
    return f"session pid {holder['pid']} ({application}, from {holder['client']}, since {since})"
