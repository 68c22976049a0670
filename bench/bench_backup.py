"""Backup speed, size and memory on the ~1 GB sample database, side by side in one run.

Targets (issue 3): the `<db>/backup` step (start to manifest written, row counts included) takes
at most 1.3x plain `pg_dump -Fc -Z0 > /dev/null` (the floor) and is at least 3x faster than the
runbook's `pg_dump | gzip`, with a file at most half that script's; peak memory of the backup
process stays under 300 MB.

    .venv/bin/python bench/bench_backup.py [--dsn "host=127.0.0.1 user=postgres dbname=postgres"] [--repeat 3]

The sample database (`ops_bench_erp`, scale 50) is generated first when missing (about 2.5 min).
"""

import argparse
import json
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ops_pipelines.demo.generator import generate_erp_database
from ops_pipelines.resources import commands
from ops_pipelines.resources.postgres import with_dbname

BENCH_DB = "ops_bench_erp"
SCALE = 50


def timed_shell(script: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", script], env=env, check=True)
    return time.perf_counter() - started


def one_backup(dsn: str, directory: str) -> None:
    """Run in a child process: one backup, then its wall time and peak memory as JSON."""
    from ops_pipelines.config import parse_config
    from ops_pipelines.core.backup import run_backup
    from ops_pipelines.resources.storage import LocalStorage

    config = parse_config(f"backup_store: {{local_dir: {directory}}}\ndatabases: [{{name: bench, dsn: '{dsn}'}}]\n", {})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = run_backup(config.databases[0], LocalStorage(Path(directory)))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "bytes": result.manifest.bytes,
                "peak_kb": peak,
                "before_kb": before,
                "tables": len(result.manifest.table_counts),
                "rows": result.manifest.total_rows,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one-backup", nargs=2, metavar=("DSN", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_backup:
        one_backup(*args.one_backup)
        return

    generated = generate_erp_database(args.dsn, BENCH_DB, SCALE)
    dsn = with_dbname(args.dsn, BENCH_DB)
    conn = commands.tool_connection(dsn)
    env, target = commands.child_env(conn.env), shlex.quote(conn.dbname)
    pg_dump = commands.find_program("pg_dump")
    print(f"database {BENCH_DB}: {generated.bytes / 1e6:,.0f} MB (scale {SCALE})", flush=True)

    floor, gzip_runs, ours = [], [], []
    with tempfile.TemporaryDirectory(prefix="ops_bench_") as tmp:
        gz = Path(tmp) / "runbook.sql.gz"
        for i in range(args.repeat):
            floor.append(timed_shell(f"'{pg_dump}' -Fc -Z0 -d {target} > /dev/null", env))
            gzip_runs.append(timed_shell(f"'{pg_dump}' -d {target} | gzip > '{gz}'", env))
            out = subprocess.run(
                [sys.executable, __file__, "--one-backup", dsn, f"{tmp}/ours{i}"],
                capture_output=True,
                text=True,
                check=True,
            )
            ours.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(
                f"run {i + 1}: floor {floor[-1]:.2f} s, pg_dump|gzip {gzip_runs[-1]:.2f} s, backup "
                f"{ours[-1]['seconds']:.2f} s",
                flush=True,
            )
        gzip_bytes = gz.stat().st_size

    floor_s, gzip_s = statistics.median(floor), statistics.median(gzip_runs)
    ours_s = statistics.median(r["seconds"] for r in ours)
    ours_bytes = ours[-1]["bytes"]
    peak_mb = max(r["peak_kb"] for r in ours) / 1024
    growth_mb = max(r["peak_kb"] - r["before_kb"] for r in ours) / 1024
    print()
    print(f"| measure (median of {args.repeat}) | wall time | file size |")
    print("|---|---:|---:|")
    print(f"| `pg_dump -Fc -Z0 > /dev/null` (floor) | {floor_s:.2f} s | - |")
    print(f"| `pg_dump \\| gzip` (runbook) | {gzip_s:.2f} s | {gzip_bytes / 1e6:,.1f} MB |")
    print(
        f"| `<db>/backup` ({ours[-1]['tables']} tables, {ours[-1]['rows']:,} rows counted) | {ours_s:.2f} s | "
        f"{ours_bytes / 1e6:,.1f} MB |"
    )
    print()
    print(f"backup / floor = {ours_s / floor_s:.2f} (target <= 1.3)")
    print(f"runbook / backup = {gzip_s / ours_s:.1f}x (target >= 3)")
    print(f"backup size / runbook size = {ours_bytes / gzip_bytes:.2f} (target <= 0.5)")
    print(
        f"peak RSS of the backup process = {peak_mb:.0f} MB, of which the backup added {growth_mb:.0f} MB (target < "
        "300 MB)"
    )


if __name__ == "__main__":
    main()
