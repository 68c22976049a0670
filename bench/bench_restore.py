"""Restore-test wall time against the runbook's manual drill, on the ~1 GB sample database.

Target (issue 4): restore test wall time (restore + verification) at most 0.7x the runbook's
`createdb && gunzip -c dump.sql.gz | psql` into a default-configured cluster, side by side.

Ours is measured whole: checksum + decompression, a new throwaway cluster (initdb, start),
pg_restore --jobs 2, counting every table, cleanup. The baseline gets its default-configured
cluster for free (started before its clock starts) and verifies nothing.

    .venv/bin/python bench/bench_restore.py [--dsn ...] [--repeat 2]
"""

import argparse
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.cluster import LocalCluster
from ops_pipelines.adapters.postgres import with_dbname
from ops_pipelines.adapters.sandbox import sandbox_for
from ops_pipelines.adapters.storage import LocalStorage
from ops_pipelines.config import parse_config
from ops_pipelines.core.backups.backup import run_backup
from ops_pipelines.core.backups.catalog import complete_backups
from ops_pipelines.core.backups.restore import run_restore_test
from ops_pipelines.demo.generator import generate_erp_database

BENCH_DB = "ops_bench_erp"


def runbook_restore(gz: Path) -> float:
    cluster = LocalCluster.temporary(prefix="ops_bench_default_")  # default settings: fsync on
    try:
        cluster.init()
        cluster.start()
        conn = commands.tool_connection(cluster.dsn())
        target = shlex.quote(commands.tool_connection(with_dbname(cluster.dsn(), "restore_target")).dbname)
        started = time.perf_counter()
        subprocess.run(
            [
                "bash",
                "-o",
                "pipefail",
                "-c",
                f"psql -q -d {shlex.quote(conn.dbname)} -c 'CREATE DATABASE restore_target' && "
                f"gunzip -c '{gz}' | psql -q -o /dev/null -d {target}",
            ],
            env=commands.child_env(conn.env),
            check=True,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - started
    finally:
        cluster.remove()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    generate_erp_database(args.dsn, BENCH_DB, 50)
    dsn = with_dbname(args.dsn, BENCH_DB)
    with tempfile.TemporaryDirectory(prefix="ops_bench_restore_") as tmp:
        tmp_path = Path(tmp)
        tmp_path.chmod(0o755)
        gz = tmp_path / "dump.sql.gz"
        conn = commands.tool_connection(dsn)
        subprocess.run(
            ["bash", "-o", "pipefail", "-c", f"pg_dump -d {shlex.quote(conn.dbname)} | gzip > '{gz}'"],
            env=commands.child_env(conn.env),
            check=True,
        )
        config = parse_config(
            f"backup_store: {{local_dir: {tmp_path / 'store'}}}\ndatabases: [{{name: bench, dsn: '{dsn}'}}]\n", {}
        )
        storage = LocalStorage(tmp_path / "store")
        run_backup(config.databases[0], storage)
        entry = complete_backups(storage, "bench")[-1]

        baseline, ours, inner = [], [], []
        for i in range(args.repeat):
            baseline.append(runbook_restore(gz))
            started = time.perf_counter()
            report = run_restore_test(config.databases[0], storage, entry, sandbox_for(config.databases[0]))
            ours.append(time.perf_counter() - started)
            inner.append(report.restore_seconds + report.verify_seconds)
            assert report.passed, report.mismatches
            print(
                f"run {i + 1}: runbook {baseline[-1]:.1f} s, restore test {ours[-1]:.1f} s "
                f"(pg_restore {report.restore_seconds:.1f} s + verify {report.verify_seconds:.1f} s; "
                f"{report.tables_checked} tables, {report.rows_checked:,} rows)",
                flush=True,
            )
    b, o, n = statistics.median(baseline), statistics.median(ours), statistics.median(inner)
    print(f"\n| measure (median of {args.repeat}) | wall time |\n|---|---:|")
    print(f"| runbook: createdb && gunzip -c dump.sql.gz \\| psql (default cluster) | {b:.1f} s |")
    print(f"| restore test, whole (checksum, decompress, new cluster, restore, verify, cleanup) | {o:.1f} s |")
    print(f"| restore test, pg_restore + verification only | {n:.1f} s |")
    print(f"\nwhole / runbook = {o / b:.2f} (target <= 0.7); restore+verify / runbook = {n / b:.2f}")


if __name__ == "__main__":
    main()
