"""Per-table sizes, tuple counts and maintenance history, read from the statistics views."""

import datetime as dt
from dataclasses import dataclass

from ops_pipelines.adapters.postgres import connect_db, read_sql
from ops_pipelines.config import DatabaseConfig


@dataclass(frozen=True)
class TableStat:
    schema_name: str
    table_name: str
    total_bytes: int
    table_bytes: int
    index_bytes: int
    toast_bytes: int
    live_tuples: int
    dead_tuples: int
    dead_ratio: float
    modified_since_analyze: int
    last_vacuum: dt.datetime | None
    last_analyze: dt.datetime | None
    vacuum_count: int
    analyze_count: int
    xid_age: int

    @property
    def qualified_name(self) -> str:
        return f"{self.schema_name}.{self.table_name}"


def collect_table_stats(db: DatabaseConfig) -> list[TableStat]:
    """Every user table of `db`, largest first. Read-only; a short statement timeout suffices."""
    with connect_db(db, "table_stats", statement_timeout="2 min") as conn:
        rows = conn.execute(read_sql("table_stats.sql")).fetchall()
    return [
        TableStat(**{**row, "dead_ratio": float(row["dead_ratio"]), "xid_age": int(row["xid_age"])}) for row in rows
    ]
