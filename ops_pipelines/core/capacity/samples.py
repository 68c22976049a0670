"""Capacity samples: take one, keep it in the metrics schema (when there is a metrics database),
read the history back (from there, or from points the assets read out of Dagster's event log),
import a history from CSV, and draw the forecast chart.

The volume is measured with statvfs when `capacity.volume_path` is set (the database lives on
this host); else `capacity.volume_capacity` stands for the volume and the sizes of all databases
on the server for its use; with neither, the database's own size is forecast without a limit.
"""

import csv
import datetime as dt
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psycopg

from ops_pipelines.adapters.postgres import Connection, connect, connect_db, one, read_sql
from ops_pipelines.config import DatabaseConfig
from ops_pipelines.core.capacity.forecast import Forecast
from ops_pipelines.errors import OpsError
from ops_pipelines.files import atomic_write_bytes
from ops_pipelines.units import format_bytes, parse_size

TRAFFIC_COUNTERS = ("commits", "rollbacks", "deadlocks", "temp_bytes", "stats_reset")


class CsvError(OpsError):
    """A history CSV with a bad row: the message names the file and the row."""


@dataclass(frozen=True)
class CapacitySample:
    database: str
    sampled_at: dt.datetime
    database_bytes: int
    wal_bytes: int | None
    connections: int
    max_connections: int
    cache_hit_ratio: float | None
    volume_used_bytes: int | None
    volume_total_bytes: int | None
    tables: list[dict] = field(default_factory=list)
    counters: dict = field(default_factory=dict)  # commits, rollbacks, deadlocks, temp_bytes, stats_reset

    @property
    def connection_ratio(self) -> float:
        return self.connections / self.max_connections if self.max_connections else 0.0


def take_sample(db: DatabaseConfig) -> CapacitySample:
    with connect_db(db, "capacity", statement_timeout="5 min") as conn:
        row = one(conn.execute(read_sql("capacity_sample.sql")))
        tables = conn.execute(read_sql("largest_tables.sql")).fetchall()
        try:
            wal = one(conn.execute("SELECT sum(size)::bigint AS b FROM pg_ls_waldir()"))["b"]
        except psycopg.errors.InsufficientPrivilege:  # pg_monitor or superuser may read it
            conn.rollback()
            wal = None
    used, total = _volume(db, row["server_database_bytes"])
    return CapacitySample(
        db.name,
        dt.datetime.now(dt.UTC),
        row["database_bytes"],
        wal,
        row["connections"],
        row["max_connections"],
        row["cache_hit_ratio"],
        used,
        total,
        tables,
        {name: row[name] for name in TRAFFIC_COUNTERS},
    )


def _volume(db: DatabaseConfig, server_bytes: int) -> tuple[int | None, int | None]:
    if db.capacity.volume_path:
        stat = os.statvfs(db.capacity.volume_path)
        return (stat.f_blocks - stat.f_bfree) * stat.f_frsize, stat.f_blocks * stat.f_frsize
    if db.capacity.volume_capacity:
        return server_bytes, db.capacity.volume_capacity
    return None, None


def _metrics(dsn: str):
    return connect(dsn, statement_timeout="5 min", lock_timeout="10s", purpose="capacity")


def ensure_schema(conn: Connection) -> None:
    conn.execute(read_sql("metrics_schema.sql"))


def store_sample(metrics_dsn: str, sample: CapacitySample) -> None:
    with _metrics(metrics_dsn) as conn:
        ensure_schema(conn)
        conn.execute(
            "INSERT INTO ops_metrics.capacity_samples (database, sampled_at, database_bytes, wal_bytes, connections,"
            " max_connections, cache_hit_ratio, volume_used_bytes, volume_total_bytes,"
            " commits, rollbacks, deadlocks, temp_bytes, stats_reset)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                sample.database,
                sample.sampled_at,
                sample.database_bytes,
                sample.wal_bytes,
                sample.connections,
                sample.max_connections,
                sample.cache_hit_ratio,
                sample.volume_used_bytes,
                sample.volume_total_bytes,
                *(sample.counters.get(name) for name in TRAFFIC_COUNTERS),
            ),
        )
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ops_metrics.table_sizes (database, sampled_at, table_name, total_bytes, table_bytes,"
                " index_bytes, toast_bytes) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        sample.database,
                        sample.sampled_at,
                        t["table_name"],
                        t["total_bytes"],
                        t["table_bytes"],
                        t["index_bytes"],
                        t["toast_bytes"],
                    )
                    for t in sample.tables
                ],
            )
        conn.commit()


@dataclass(frozen=True)
class History:
    used: pd.Series  # bytes by sample time: the volume's use, or the database's size
    capacity_bytes: int | None
    imported: int  # how many of the samples came from a CSV import


def read_history(metrics_dsn: str, database: str) -> History:
    with _metrics(metrics_dsn) as conn:
        ensure_schema(conn)
        rows = conn.execute(
            "SELECT sampled_at, COALESCE(volume_used_bytes, database_bytes) AS used, volume_total_bytes, source"
            " FROM ops_metrics.capacity_samples WHERE database = %s ORDER BY sampled_at",
            (database,),
        ).fetchall()
        conn.commit()
    return history_from_points(
        [(r["sampled_at"], float(r["used"]), r["volume_total_bytes"], r["source"] == "imported") for r in rows]
    )


def history_from_points(points: list[tuple[dt.datetime, float, int | None, bool]]) -> History:
    """(time, used bytes, volume bytes or None, imported?) in any order -> the history, oldest first;
    the volume is the newest one known. A time present twice (an import repeated) counts once."""
    by_time: dict[dt.datetime, tuple[float, int | None, bool]] = {}
    for moment, used, total, imported in sorted(points, key=lambda p: p[0]):
        by_time.setdefault(moment, (used, total, imported))
    times = sorted(by_time)
    used = pd.Series([by_time[t][0] for t in times], index=pd.DatetimeIndex(times), dtype=float)
    totals = [by_time[t][1] for t in times if by_time[t][1]]
    return History(used, totals[-1] if totals else None, sum(by_time[t][2] for t in times))


def import_csv(metrics_dsn: str, database: str, path: Path) -> int:
    """Import a history CSV into the metrics database (see `parse_history_csv`); returns rows imported."""
    return store_imported(metrics_dsn, database, parse_history_csv(path))


def store_imported(metrics_dsn: str, database: str, parsed: list[tuple[dt.datetime, int]]) -> int:
    with _metrics(metrics_dsn) as conn:
        ensure_schema(conn)
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ops_metrics.capacity_samples (database, sampled_at, source, database_bytes, "
                "volume_used_bytes)"
                " VALUES (%s, %s, 'imported', %s, %s) ON CONFLICT (database, sampled_at) DO NOTHING",
                [(database, moment, size, size) for moment, size in parsed],
            )
        conn.commit()
    return len(parsed)


def parse_history_csv(path: Path) -> list[tuple[dt.datetime, int]]:
    """Rows of `date,bytes` (a header line is allowed; bytes may be "512GB"). Every row is checked
    before any is used; a bad one is refused with its row number."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CsvError(f"{path}: cannot read: {exc.strerror}") from None
    parsed = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if number == 1 and row[0].strip().lower() in {"date", "time", "day", "timestamp"}:
            continue
        if len(row) != 2:
            raise CsvError(f"{path} row {number}: expected 2 columns (date, bytes), got {len(row)}")
        try:
            moment = dt.datetime.fromisoformat(row[0].strip())
        except ValueError:
            raise CsvError(f"{path} row {number}: {row[0].strip()!r} is not a date like 2026-01-31") from None
        try:
            size = parse_size(row[1].strip())
        except ValueError:
            raise CsvError(
                f"{path} row {number}: {row[1].strip()!r} is not a number of bytes or a size like 512GB"
            ) from None
        parsed.append((moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC), size))
    if not parsed:
        raise CsvError(f"{path}: no rows")
    return parsed


def draw_chart(
    history: History, result: Forecast, warn_ratio: float, title: str, path: Path, mode: int = 0o600
) -> Path:
    """History, both models' forecasts (the chosen one with its 95% interval), and the warning and
    full lines, as a PNG. Sizes in GB (10^9 bytes), as everywhere (units.format_bytes)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 4.5), dpi=100)
    gb = 1e9
    axes.plot(history.used.index, history.used.to_numpy() / gb, color="#1f77b4", label="used (imported and sampled)")
    if result.enough_history and result.path is not None:
        latest_full = max((c.days_to_full or 0 for c in result.crossings.values()), default=0)
        shown = result.path.iloc[: max(180, latest_full + 14)]
        for name, crossing in result.crossings.items():
            chosen = name == result.model
            full = f"full in {crossing.days_to_full} d" if crossing.days_to_full is not None else "no crossing"
            axes.plot(
                shown["date"],
                shown[name] / gb,
                color="#d62728" if chosen else "#9467bd",
                linestyle="-" if chosen else "--",
                label=f"{name} ({'chosen' if chosen else 'other model'}; {full})",
            )
        axes.fill_between(
            shown["date"], shown["low"] / gb, shown["high"] / gb, color="#d62728", alpha=0.15, label="95% interval"
        )
    if history.capacity_bytes:
        axes.axhline(
            history.capacity_bytes / gb,
            color="black",
            linestyle="--",
            label=f"full ({format_bytes(history.capacity_bytes)})",
        )
        axes.axhline(
            warn_ratio * history.capacity_bytes / gb,
            color="#ff7f0e",
            linestyle=":",
            label=f"warning ({warn_ratio:.0%})",
        )
    axes.set_title(title)
    axes.set_ylabel("GB")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue(), mode=mode)
    return path
