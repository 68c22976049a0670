"""Archival throughput, batch lock time and memory, against one unbatched transaction.

Target (issue 6): archiving the ~1 M completed orders with their ~3 M lines (the scale-50 sample:
every completed order older than a year) runs at least 50% as fast as a single unbatched
`INSERT … SELECT; DELETE` of the same rows in one transaction, measured side by side, while no
batch holds its locks longer than 2 seconds and memory stays flat.

Each side gets its own copy of the sample database (CREATE DATABASE … TEMPLATE). `--composite`
re-keys the lines by their composite key `(order_id, line_no)` in both copies first (issue 16: the
line tables of real ERP schemas), so the rule pages, matches and verifies by a two-column key.

    .venv/bin/python bench/bench_archive.py [--dsn ...] [--batch-size 5000] [--composite]
"""

import argparse
import resource
import time

from psycopg import sql

from ops_pipelines.adapters.postgres import connect, with_dbname
from ops_pipelines.config import parse_config
from ops_pipelines.core.archive import run_archive
from ops_pipelines.demo.generator import generate_erp_database

BENCH_DB = "ops_bench_erp"
PREDICATE = "status = 'completed' AND completed_at < now() - interval '365 days'"


def copy_of(server: str, name: str, composite: bool = False) -> str:
    with connect(server, autocommit=True, statement_timeout="30 min") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(BENCH_DB)))
    dsn = with_dbname(server, name)
    with connect(dsn, autocommit=True, statement_timeout="30 min") as conn:
        if composite:  # the lines keyed by (order_id, line_no), as line tables usually are
            conn.execute(
                "ALTER TABLE order_lines DROP CONSTRAINT order_lines_pkey, DROP COLUMN id,"
                " DROP CONSTRAINT order_lines_order_id_line_no_key, ADD PRIMARY KEY (order_id, line_no)"
            )
        conn.execute("VACUUM ANALYZE")
    return dsn


def inspect_key(dsn: str) -> tuple[str, ...]:
    from ops_pipelines.core.archive import read_table

    with connect(dsn) as conn:
        return read_table(conn, "archive", "order_lines", "archive table").key


def drop(server: str, name: str) -> None:
    with connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def unbatched(dsn: str) -> tuple[float, int]:
    with connect(dsn, statement_timeout="2h") as conn:
        started = time.perf_counter()
        conn.execute("CREATE SCHEMA archive")
        conn.execute("CREATE TABLE archive.orders (LIKE public.orders)")
        conn.execute("CREATE TABLE archive.order_lines (LIKE public.order_lines)")
        conn.execute(f"CREATE TEMP TABLE moving AS SELECT id FROM orders WHERE {PREDICATE}")
        conn.execute("INSERT INTO archive.order_lines SELECT l.* FROM order_lines l JOIN moving m ON m.id = l.order_id")
        conn.execute("INSERT INTO archive.orders SELECT o.* FROM orders o JOIN moving m ON m.id = o.id")
        conn.execute("DELETE FROM order_lines l USING moving m WHERE m.id = l.order_id")
        rows = conn.execute("DELETE FROM orders o USING moving m WHERE m.id = o.id").rowcount
        conn.commit()
        return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--composite", action="store_true", help="key the lines by (order_id, line_no)")
    args = parser.parse_args()
    generate_erp_database(args.dsn, BENCH_DB, 50)
    try:
        base_dsn = copy_of(args.dsn, "ops_bench_archive_base", args.composite)
        base_seconds, base_rows = unbatched(base_dsn)
        print(f"unbatched: {base_rows:,} orders in {base_seconds:.1f} s", flush=True)
        drop(args.dsn, "ops_bench_archive_base")

        ours_dsn = copy_of(args.dsn, "ops_bench_archive_ours", args.composite)
        config = parse_config(
            "backup_store: {local_dir: /tmp/ops_bench_unused}\ndatabases:\n"
            f"  - name: bench\n    dsn: '{ours_dsn}'\n    archive:\n"
            "      - {name: completed_orders, table: public.orders, age_column: completed_at, older_than: 365 days,"
            " status_column: status, status_in: [completed], children: [{table: public.order_lines, fk: order_id}],"
            f" batch_size: {args.batch_size}}}\n",
            {},
        )
        db = config.databases[0]
        rss_samples = []
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run = run_archive(
            db, db.archive[0], log=lambda m: rss_samples.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        )
        ours_seconds = run.seconds
        rows = run.tables["public.orders"].removed
        lines = run.tables["public.order_lines"].removed
        print(
            f"moved {rows:,} (unbatched moved {base_rows:,}; the cutoffs differ by the minutes between the runs);"
            f" consistent: {run.consistent} {run.tables}",
            flush=True,
        )
        assert run.consistent and abs(rows - base_rows) <= base_rows * 0.001
        print(f"batched: {rows:,} orders + {lines:,} lines in {ours_seconds:.1f} s, {run.batches} batches", flush=True)
        print(f"lines keyed by: {', '.join(inspect_key(ours_dsn))}", flush=True)
    finally:
        drop(args.dsn, "ops_bench_archive_base")
        drop(args.dsn, "ops_bench_archive_ours")
    print("\n| measure | value |\n|---|---:|")
    print(
        f"| unbatched INSERT … SELECT; DELETE, one transaction | {base_seconds:.1f} s "
        f"({base_rows / base_seconds:,.0f} orders/s) |"
    )
    print(
        f"| `<db>/archive_completed_orders`, batch {args.batch_size} | {ours_seconds:.1f} s "
        f"({rows / ours_seconds:,.0f} orders/s) |"
    )
    print(f"| longest batch (locks held) | {run.longest_batch_ms:,.0f} ms |")
    print(
        f"| peak RSS growth during the run | {(max(rss_samples) - before) / 1024:.1f} MB (first batch "
        f"{(rss_samples[0] - before) / 1024:.1f} MB) |"
    )
    print(
        f"\nthroughput ratio = {base_seconds / ours_seconds:.2f} (target >= 0.5); longest batch "
        f"{run.longest_batch_ms / 1000:.2f} s (target <= 2 s)"
    )


if __name__ == "__main__":
    main()
