"""Backup speed, size and memory on the scale-50 ERP-like sample, side by side in one run, for
each zstd level and thread count asked for: the table the compression defaults are chosen from.

Targets (issues 3 and 17): the `<db>/backup` step (start to manifest written, row counts included)
takes at most 1.3x plain `pg_dump -Fc -Z0 > /dev/null` (the floor) and is at least 3x faster than
the runbook's `pg_dump | gzip`, with a file at most half that script's; peak memory of the backup
process stays under 300 MB.

    .venv/bin/python bench/bench_backup.py [--dsn "host=127.0.0.1 user=postgres dbname=postgres"]
        [--repeat 2] [--levels 1,3,6] [--threads 0,2]

The sample database (`ops_bench_erp`, scale 50) is generated first when missing (about 4 min).
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

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.postgres import with_dbname
from ops_pipelines.demo.generator import generate_erp_database

BENCH_DB = "ops_bench_erp"
SCALE = 50


def timed_shell(script: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", script], env=env, check=True)
    return time.perf_counter() - started


def one_backup(dsn: str, directory: str, level: str, threads: str) -> None:
    """Run in a child process: one backup, then its wall time and peak memory as JSON."""
    from ops_pipelines.adapters.storage import LocalStorage
    from ops_pipelines.config import parse_config
    from ops_pipelines.core.backups.backup import run_backup

    config = parse_config(
        f"backup_store: {{local_dir: {directory}}}\ndatabases: [{{name: bench, dsn: '{dsn}', "
        f"backup: {{compression_level: {level}, compression_threads: {threads}}}}}]\n",
        {},
    )
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


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--levels", type=numbers, default=[1, 3, 6], help="zstd levels, e.g. 1,3,6")
    parser.add_argument("--threads", type=numbers, default=[0, 2], help="zstd worker threads, e.g. 0,2")
    parser.add_argument("--one-backup", nargs=4, metavar=("DSN", "DIR", "LEVEL", "THREADS"), help=argparse.SUPPRESS)
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

    settings = [(level, threads) for level in args.levels for threads in args.threads]
    floor, gzip_runs = [], []
    ours: dict[tuple[int, int], list[dict]] = {setting: [] for setting in settings}
    with tempfile.TemporaryDirectory(prefix="ops_bench_") as tmp:
        gz = Path(tmp) / "runbook.sql.gz"
        for i in range(args.repeat):
            floor.append(timed_shell(f"'{pg_dump}' -Fc -Z0 -d {target} > /dev/null", env))
            gzip_runs.append(timed_shell(f"'{pg_dump}' -d {target} | gzip > '{gz}'", env))
            print(f"run {i + 1}: floor {floor[-1]:.2f} s, pg_dump|gzip {gzip_runs[-1]:.2f} s", flush=True)
            for level, threads in settings:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--one-backup",
                        dsn,
                        f"{tmp}/ours{i}_{level}_{threads}",
                        str(level),
                        str(threads),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                ours[(level, threads)].append(json.loads(out.stdout.strip().splitlines()[-1]))
                subprocess.run(["rm", "-rf", f"{tmp}/ours{i}_{level}_{threads}"], check=True)
                print(
                    f"  zstd level {level}, {threads} threads: {ours[(level, threads)][-1]['seconds']:.2f} s",
                    flush=True,
                )
        gzip_bytes = gz.stat().st_size

    floor_s, gzip_s = statistics.median(floor), statistics.median(gzip_runs)
    print()
    print(
        f"floor `pg_dump -Fc -Z0 > /dev/null`: {floor_s:.2f} s; runbook `pg_dump | gzip`: {gzip_s:.2f} s, "
        f"{gzip_bytes / 1e6:,.1f} MB (medians of {args.repeat})"
    )
    print()
    print(
        "| zstd level | threads | backup step | / floor (<= 1.3) | runbook / backup (>= 3) | file | / runbook's file "
        "(<= 0.5) | peak RSS |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (level, threads), runs in ours.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        size = runs[-1]["bytes"]
        peak_mb = max(r["peak_kb"] for r in runs) / 1024
        print(
            f"| {level} | {threads} | {seconds:.2f} s | {seconds / floor_s:.2f} | {gzip_s / seconds:.1f}x | "
            f"{size / 1e6:,.1f} MB | {size / gzip_bytes:.2f} | {peak_mb:.0f} MB |"
        )
    first = next(iter(ours.values()))[-1]
    print(f"\n{first['tables']} tables, {first['rows']:,} rows counted by every backup")


if __name__ == "__main__":
    main()
