"""Rebuild bloated indexes online, after dropping invalid leftovers of failed concurrent builds.

Bloat is measured with pgstattuple when the extension is installed, else estimated from planner
statistics (sql/index_bloat.sql). Indexes over both the bloat ratio and the minimum size are
rebuilt with REINDEX INDEX CONCURRENTLY (no lock that blocks the ERP's reads or writes); each
statement waits at most lock_timeout for its locks, and an index it cannot lock is skipped.
"""

import time
from dataclasses import dataclass

import psycopg
from psycopg import errors, sql

from ops_pipelines.adapters.postgres import Connection, connect_db, first_line, read_sql
from ops_pipelines.config import DatabaseConfig
from ops_pipelines.core.verdict import Verdict


@dataclass(frozen=True)
class IndexAction:
    index: str  # schema.index
    table: str
    action: str  # "dropped invalid", "rebuilt", "skipped"
    bytes_before: int
    bytes_after: int | None
    seconds: float
    detail: str

    @property
    def reclaimed(self) -> int:
        return self.bytes_before - self.bytes_after if self.bytes_after is not None else 0


@dataclass(frozen=True)
class ReindexOutcome:
    method: str  # "pgstattuple" or "statistics estimate"
    actions: list[IndexAction]

    @property
    def reclaimed_bytes(self) -> int:
        return sum(a.reclaimed for a in self.actions)


def _session(db: DatabaseConfig):
    return connect_db(db, "reindex", autocommit=True)


def run_reindex(db: DatabaseConfig, log=lambda message: None) -> ReindexOutcome:
    with _session(db) as conn:
        actions = [_drop_invalid(conn, row) for row in conn.execute(read_sql("invalid_indexes.sql")).fetchall()]
        for action in actions:
            log(f"{action.index}: {action.action} ({action.detail})")
        method, candidates = _bloated_indexes(conn, db)
        log(
            f"bloat by {method}: {len(candidates)} indexes over {db.reindex.bloat_ratio:.0%} and "
            f"{db.reindex.min_index_size:,} bytes"
        )
        for row in candidates:
            actions.append(_rebuild(conn, row))
            log(f"{actions[-1].index}: {actions[-1].action} ({actions[-1].detail})")
    return ReindexOutcome(method, actions)


def has_pgstattuple(conn: Connection) -> bool:
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pgstattuple'").fetchone() is not None


def _bloated_indexes(conn: Connection, db: DatabaseConfig) -> tuple[str, list[dict]]:
    if has_pgstattuple(conn):
        method, rows = (
            "pgstattuple",
            conn.execute(read_sql("index_bloat_pgstattuple.sql"), {"min_bytes": db.reindex.min_index_size}).fetchall(),
        )
    else:
        method, rows = "statistics estimate", conn.execute(read_sql("index_bloat.sql")).fetchall()
    return method, [
        r for r in rows if r["bytes"] >= db.reindex.min_index_size and r["bloat_ratio"] >= db.reindex.bloat_ratio
    ]


def _index_size(conn: Connection, schema: str, index: str) -> int | None:
    row = conn.execute(
        "SELECT pg_relation_size(c.oid) AS bytes FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s",
        (schema, index),
    ).fetchone()
    return row["bytes"] if row else None


def _drop_invalid(conn: Connection, row: dict) -> IndexAction:
    statement = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
        sql.Identifier(row["schema_name"], row["index_name"])
    )
    return _index_statement(
        conn,
        row,
        statement,
        "dropped invalid",
        "invalid index left by a failed concurrent build",
        locked="locked by another session (a build may still be running)",
        size_after=lambda: 0,
    )


def _rebuild(conn: Connection, row: dict) -> IndexAction:
    statement = sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(sql.Identifier(row["schema_name"], row["index_name"]))
    return _index_statement(
        conn,
        row,
        statement,
        "rebuilt",
        f"bloat {row['bloat_ratio']:.0%}",
        locked="locked by another session (lock_timeout)",
        size_after=lambda: _index_size(conn, row["schema_name"], row["index_name"]),
    )


def _index_statement(
    conn, row: dict, statement: sql.Composed, action: str, detail: str, *, locked: str, size_after
) -> IndexAction:
    """Run one index statement; a lock or any other error skips the index with the reason."""
    name = f"{row['schema_name']}.{row['index_name']}"
    started = time.monotonic()
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        why = locked if isinstance(exc, errors.LockNotAvailable) else first_line(exc)
        return IndexAction(name, row["table_name"], "skipped", row["bytes"], None, time.monotonic() - started, why)
    return IndexAction(name, row["table_name"], action, row["bytes"], size_after(), time.monotonic() - started, detail)


def invalid_index_verdict(db: DatabaseConfig) -> Verdict:
    with _session(db) as conn:
        rows = conn.execute(read_sql("invalid_indexes.sql")).fetchall()
    if rows:
        names = ", ".join(f"{r['schema_name']}.{r['index_name']}" for r in rows[:5])
        return Verdict.fail(f"{len(rows)} invalid indexes: {names}", {"invalid_indexes": len(rows)})
    return Verdict.ok("no invalid index", {"invalid_indexes": 0})
