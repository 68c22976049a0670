"""What the weekly report reads live from a database: performance, schema health and the security
review. Every query is in sql/; each part that cannot be read says why in a sentence (`note`)
instead of failing the whole report, and statement texts are shown with passwords masked.
"""

import datetime as dt
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from ops_pipelines.adapters.postgres import Connection, config_sql, connect_db, first_line, read_sql
from ops_pipelines.config import DatabaseConfig, Reports
from ops_pipelines.redact import mask_passwords

STATEMENT_TIMEOUT = "1 min"  # each query; the report must not linger on a busy server


@dataclass
class Performance:
    activity: dict = field(default_factory=dict)  # cache hit, traffic, connections vs max
    top_by_mean: list[dict] = field(default_factory=list)
    top_by_total: list[dict] = field(default_factory=list)
    statements_note: str | None = None  # why there are no statement figures
    long_sessions: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # parts that could not be read


@dataclass
class SchemaHealth:
    largest_tables: list[dict] = field(default_factory=list)
    most_written: list[dict] = field(default_factory=list)
    unused_indexes: list[dict] = field(default_factory=list)
    duplicate_indexes: list[dict] = field(default_factory=list)
    tables_without_pk: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Security:
    accounts: list[dict] = field(default_factory=list)  # over the threshold, most failures first
    note: str | None = None  # skipped, and why


@dataclass
class DatabaseHealth:
    performance: Performance
    schema: SchemaHealth
    security: Security


def read_health(db: DatabaseConfig, settings: Reports, now: dt.datetime) -> DatabaseHealth:
    """Raises DatabaseUnavailable when the database cannot be reached at all."""
    with connect_db(db, "report", statement_timeout=STATEMENT_TIMEOUT, autocommit=True) as conn:
        return DatabaseHealth(_performance(conn, settings), _schema_health(conn), _security(conn, settings, now))


def _performance(conn: Connection, settings: Reports) -> Performance:
    result = Performance()
    rows = _rows(conn, "report_activity.sql", result.notes, "activity")
    result.activity = rows[0] if rows else {}
    result.long_sessions = _rows(
        conn,
        "report_long_sessions.sql",
        result.notes,
        "long sessions",
        {"min_seconds": settings.long_running_after.to_timedelta().total_seconds()},
    )
    for row in result.long_sessions:
        row["query"] = mask_passwords(row["query"] or "")
    schema = conn.execute(
        "SELECT n.nspname FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_stat_statements'"
    ).fetchone()
    if schema is None:
        result.statements_note = (
            "pg_stat_statements is not installed in this database, so there are no statement "
            "timings (CREATE EXTENSION pg_stat_statements, with it in shared_preload_libraries)."
        )
        return result
    text = read_sql("report_top_statements.sql")
    for order, target in (("mean_exec_time", result.top_by_mean), ("total_exec_time", result.top_by_total)):
        query = sql.SQL(text).format(schema=sql.Identifier(schema["nspname"]), order=sql.Identifier(order))
        try:
            target.extend(conn.execute(query).fetchall())
        except psycopg.Error as exc:
            result.statements_note = f"pg_stat_statements is installed but cannot be read: {first_line(exc)}"
            return result
    for row in result.top_by_mean + result.top_by_total:
        row["query"] = mask_passwords(row["query"] or "")
    return result


def _schema_health(conn: Connection) -> SchemaHealth:
    result = SchemaHealth()
    result.largest_tables = _rows(conn, "largest_tables.sql", result.notes, "largest tables")[:10]
    result.most_written = _rows(conn, "report_table_writes.sql", result.notes, "table writes")
    result.unused_indexes = _rows(conn, "report_unused_indexes.sql", result.notes, "unused indexes")
    result.duplicate_indexes = _rows(conn, "report_duplicate_indexes.sql", result.notes, "duplicate indexes")
    result.tables_without_pk = _rows(conn, "report_tables_without_pk.sql", result.notes, "tables without a primary key")
    return result


def _security(conn: Connection, settings: Reports, now: dt.datetime) -> Security:
    query = config_sql(settings.failed_login_query) if settings.failed_login_query else read_sql("failed_logins.sql")
    params = {"since": now - dt.timedelta(days=7), "threshold": settings.failed_login_threshold}
    try:
        rows = conn.execute(query, params).fetchall()
    except psycopg.errors.UndefinedTable as exc:
        if settings.failed_login_query:
            return Security(
                note=f"security review skipped: the failed-login query needs a missing table: {first_line(exc)}"
            )
        return Security(
            note="security review skipped: this database has no auth.login_attempts table "
            "(set reports.failed_login_query to read logins from elsewhere)"
        )
    except psycopg.Error as exc:
        return Security(note=f"security review failed: the failed-login query was refused: {first_line(exc)}")
    if rows and not {"account", "failed_logins"} <= rows[0].keys():
        return Security(
            note=f"security review failed: the failed-login query must return the columns account and "
            f"failed_logins; it returned {', '.join(rows[0])}"
        )
    return Security(accounts=rows)


def _rows(conn: Connection, name: str, notes: list[str], what: str, params: dict | None = None) -> list[dict]:
    try:
        return conn.execute(read_sql(name), params).fetchall()
    except psycopg.Error as exc:
        notes.append(f"{what} could not be read: {first_line(exc)}")
        return []
