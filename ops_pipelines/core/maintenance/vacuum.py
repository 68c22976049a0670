"""VACUUM (ANALYZE) where the statistics say it helps, never waiting long for a lock.

A table is chosen when its dead tuples pass both the ratio and the absolute minimum, when its
statistics are stale (rows modified since the last analyze over a ratio of its rows), or when its
transaction-ID age passes the warning line (then it is frozen: VACUUM (FREEZE, ANALYZE)). Each
statement runs on its own in autocommit (VACUUM cannot run in a transaction block) with the
database's lock_timeout: a table another session holds locked is skipped and reported.
"""

import time
from dataclasses import dataclass

import psycopg
from psycopg import errors, sql

from ops_pipelines.adapters.postgres import Connection, connect_db, first_line, one, read_sql
from ops_pipelines.config import DatabaseConfig, VacuumSettings
from ops_pipelines.core.verdict import Verdict


@dataclass(frozen=True)
class TableFigures:
    schema_name: str
    table_name: str
    live_tuples: int
    dead_tuples: int
    modified_since_analyze: int
    estimated_rows: int
    xid_age: int
    total_bytes: int

    @property
    def name(self) -> str:
        return f"{self.schema_name}.{self.table_name}"

    @property
    def dead_ratio(self) -> float:
        total = self.live_tuples + self.dead_tuples
        return self.dead_tuples / total if total else 0.0


@dataclass(frozen=True)
class VacuumPlanItem:
    table: TableFigures
    freeze: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class VacuumAction:
    table: str
    statement: str
    reasons: str
    dead_before: int
    dead_after: int | None
    seconds: float
    skipped: str | None = None  # why it did not run, when it did not


def plan_vacuum(tables: list[TableFigures], settings: VacuumSettings) -> list[VacuumPlanItem]:
    """Pure: which tables to vacuum and why. Oldest transaction IDs first, then most dead tuples."""
    plan = []
    for table in tables:
        reasons = []
        if table.dead_tuples >= settings.min_dead_tuples and table.dead_ratio >= settings.dead_ratio:
            reasons.append(f"{table.dead_tuples:,} dead tuples ({table.dead_ratio:.0%})")
        basis = max(table.estimated_rows, table.live_tuples, 1)
        if table.modified_since_analyze >= max(1, settings.stale_analyze_ratio * basis):
            reasons.append(f"{table.modified_since_analyze:,} rows modified since the last analyze")
        freeze = table.xid_age >= settings.xid_age_warn
        if freeze:
            reasons.append(f"transaction-ID age {table.xid_age:,}")
        if reasons:
            plan.append(VacuumPlanItem(table, freeze, tuple(reasons)))
    return sorted(plan, key=lambda item: (-item.table.xid_age if item.freeze else 0, -item.table.dead_tuples))


def read_table_figures(conn: Connection) -> list[TableFigures]:
    return [
        TableFigures(**{k: row[k] for k in TableFigures.__dataclass_fields__})
        for row in conn.execute(read_sql("vacuum_candidates.sql")).fetchall()
    ]


def run_vacuum(db: DatabaseConfig, log=lambda message: None) -> list[VacuumAction]:
    with connect_db(db, "vacuum", autocommit=True) as conn:
        plan = plan_vacuum(read_table_figures(conn), db.vacuum)
        log(f"{len(plan)} tables need work")
        actions = []
        for item in plan:
            actions.append(_vacuum_one(conn, item))
            action = actions[-1]
            if action.skipped:
                log(f"{action.table}: {action.skipped}")
            else:
                removed = f"{action.dead_before:,} -> {action.dead_after:,} dead tuples"
                log(f"{action.table}: {removed} in {action.seconds:.1f} s")
        return actions


def _vacuum_one(conn: Connection, item: VacuumPlanItem) -> VacuumAction:
    options = sql.SQL("FREEZE, ANALYZE") if item.freeze else sql.SQL("ANALYZE")
    ident = sql.Identifier(item.table.schema_name, item.table.table_name)
    statement = sql.SQL("VACUUM ({}) {}").format(options, ident)
    text = statement.as_string(conn)
    reasons = "; ".join(item.reasons)
    started = time.monotonic()
    skipped = None
    try:
        conn.execute(statement)
    except errors.LockNotAvailable:
        skipped = "skipped: locked by another session (lock_timeout)"
    except psycopg.Error as exc:
        skipped = f"failed: {first_line(exc)}"
    if skipped:
        elapsed = time.monotonic() - started
        return VacuumAction(item.table.name, text, reasons, item.table.dead_tuples, None, elapsed, skipped=skipped)
    seconds = time.monotonic() - started
    after = conn.execute(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = %s AND relname = %s",
        (item.table.schema_name, item.table.table_name),
    ).fetchone()
    return VacuumAction(
        item.table.name, text, reasons, item.table.dead_tuples, after["n_dead_tup"] if after else None, seconds
    )


def xid_age_verdict(db: DatabaseConfig) -> Verdict:
    """Warn past xid_age_warn, error past xid_age_error (wraparound stops writes at ~2.1 billion)."""
    settings = db.vacuum
    with connect_db(db, "vacuum", statement_timeout="1 min") as conn:
        row = one(conn.execute(read_sql("xid_age.sql")))
    worst = max(row["database_xid_age"], row["oldest_table_xid_age"])
    metadata = {
        "database_xid_age": row["database_xid_age"],
        "oldest_table_xid_age": row["oldest_table_xid_age"],
        "oldest_table": row["oldest_table"] or "",
        "warn_at": settings.xid_age_warn,
        "error_at": settings.xid_age_error,
    }
    where = f"database {row['database_xid_age']:,}, oldest table {row['oldest_table']} {row['oldest_table_xid_age']:,}"
    if worst >= settings.xid_age_error:
        return Verdict.fail(f"transaction-ID age past {settings.xid_age_error:,}: {where}", metadata)
    if worst >= settings.xid_age_warn:
        return Verdict.warn(f"transaction-ID age past {settings.xid_age_warn:,}: {where}", metadata)
    return Verdict.ok(f"transaction-ID age {where}", metadata)


def dead_tuple_verdict(db: DatabaseConfig) -> Verdict:
    """After vacuuming, no table should still be over the dead-tuple thresholds (warning)."""
    with connect_db(db, "vacuum", statement_timeout="1 min") as conn:
        tables = read_table_figures(conn)
    over = [t for t in tables if t.dead_tuples >= db.vacuum.min_dead_tuples and t.dead_ratio >= db.vacuum.dead_ratio]
    metadata = {"tables_over_threshold": len(over), "tables": len(tables)}
    if over:
        names = ", ".join(f"{t.name} ({t.dead_ratio:.0%})" for t in over[:5])
        return Verdict.warn(f"{len(over)} tables over the dead-tuple thresholds: {names}", metadata)
    return Verdict(
        True,
        True,
        f"no table over {db.vacuum.dead_ratio:.0%} dead tuples (minimum {db.vacuum.min_dead_tuples:,})",
        metadata,
    )
