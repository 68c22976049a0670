"""Retention of a monthly-partitioned time series: whole partitions moved or dropped, against the
row-by-row archival of the same rows.

Target (issue 16): with 10 M rows in monthly partitions (camera counts: camera, taken_at, people),
each partition older than the cutoff is moved to the archive schema (same database: DETACH ...
CONCURRENTLY, then SET SCHEMA with its ledger entry) or dropped by a purge rule in under 5 s,
whatever its row count. Baseline, in the same run, on a copy of the same table: the same rows moved
row by row (the rule on an unpartitioned copy), as a table without partitions would be.

    .venv/bin/python bench/bench_archive_partitions.py [--rows 10000000] [--months 24]
"""

import argparse
import sys
import time
from pathlib import Path

from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops_pipelines.adapters.postgres import connect, with_dbname  # noqa: E402
from ops_pipelines.config import parse_config  # noqa: E402
from ops_pipelines.core.archive import run_archive  # noqa: E402

SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def make_database(name: str, rows: int, months: int, partitioned: bool) -> str:
    with connect(SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = with_dbname(SERVER, name)
    step = f"{months * 30 * 86400 / (rows / 20):.3f} seconds"  # 20 cameras
    with connect(dsn, autocommit=True, statement_timeout="2h") as conn:
        conn.execute(
            "CREATE TABLE readings (camera text NOT NULL, taken_at timestamptz NOT NULL, people int NOT NULL,"
            " PRIMARY KEY (camera, taken_at))" + (" PARTITION BY RANGE (taken_at)" if partitioned else "")
        )
        if partitioned:
            conn.execute(
                f"""DO $$ DECLARE month date; BEGIN
                FOR i IN -{months}..1 LOOP
                    month := date_trunc('month', now())::date + make_interval(months => i);
                    EXECUTE format('CREATE TABLE readings_%s PARTITION OF readings FOR VALUES FROM (%L) TO (%L)',
                                   to_char(month, 'YYYY_MM'), month, month + interval '1 month');
                END LOOP; END $$"""
            )
        conn.execute(
            "INSERT INTO readings SELECT 'cam' || c, t, (random() * 40)::int"
            " FROM generate_series(1, 20) AS c,"
            f" generate_series(now() - interval '{months} months', now(), interval '{step}') AS t"
        )
        conn.execute("VACUUM ANALYZE readings")
    return dsn


def rule(dsn: str, purge: bool) -> tuple:
    config = parse_config(
        "backup_store: {local_dir: /tmp/ops_bench_unused}\ndatabases:\n"
        f"  - name: bench\n    dsn: '{dsn}'\n    timeouts: {{statement: 2h}}\n    archive:\n"
        "      - {name: old_readings, table: public.readings, age_column: taken_at, older_than: 365 days,"
        f" batch_size: 5000, purge: {str(purge).lower()}}}\n",
        {},
    )
    return config.databases[0], config.databases[0].archive[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--months", type=int, default=24)
    args = parser.parse_args()
    results = {}
    for label, partitioned, purge in (
        ("row by row, unpartitioned (baseline)", False, False),
        ("whole partitions moved (archive)", True, False),
        ("whole partitions dropped (purge)", True, True),
    ):
        name = "ops_bench_partitions"
        started = time.perf_counter()
        dsn = make_database(name, args.rows, args.months, partitioned)
        print(f"{label}: {args.rows:,} rows made in {time.perf_counter() - started:.0f} s", flush=True)
        db, archive_rule = rule(dsn, purge)
        started = time.perf_counter()
        run = run_archive(db, archive_rule)
        seconds = time.perf_counter() - started
        whole = run.partitions
        rows = sum(p.rows for p in whole) + run.tables["public.readings"].removed
        results[label] = (seconds, rows, whole, run)
        print(f"{label}: {rows:,} rows in {seconds:.1f} s; partitions: {len(whole)}", flush=True)
        with connect(SERVER, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    base_seconds = results["row by row, unpartitioned (baseline)"][0]
    print("\n| run | rows | seconds | per partition | vs row by row |\n|---|---:|---:|---:|---:|")
    for label, (seconds, rows, whole, _) in results.items():
        per = f"{seconds / len(whole):.2f} s" if whole else "–"
        print(f"| {label} | {rows:,} | {seconds:.1f} s | {per} | {base_seconds / seconds:.1f}x |")
    for label, (_, _, whole, run) in results.items():
        if whole:
            slowest = max(p.seconds for p in whole)
            print(
                f"{label}: {len(whole)} partitions of {min(p.rows for p in whole):,}-{max(p.rows for p in whole):,} "
                f"rows, {min(p.seconds for p in whole):.2f}-{slowest:.2f} s each; "
                f"{run.tables['public.readings'].removed:,} straddling rows row by row; "
                f"target under 5 s per partition: {'met' if slowest < 5 else 'NOT met'}"
            )


if __name__ == "__main__":
    main()
