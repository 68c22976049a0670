"""What a backup costs as a Dagster run, against the work it does: run wall time against step time.

A backup launched as the UI launches it (GraphQL `launchRun` of `backup_job` for one database's
partition), through the real run queue (dagster-daemon with the shipped dagster.yaml and its
PostgreSQL storage) and the real run worker. For each run the figures come from Dagster's own
records: queued (creation) -> started (the worker's RUN_START) -> ended, and each step's start and
end. Overhead = wall time from launch to end, minus the `backup` step (the work: pg_dump, zstd,
sha256, fsync).

Two code locations in the same run, on the same database, one after the other:
- baseline: the same definitions with Dagster's default executor (multiprocess: a subprocess per
  step and per check, each importing Dagster and the code location again);
- shipped: the code location as it is (in-process executor: steps run in the run worker).

The ERP sample database is generated at `--scale` (default 3, about 90 MB, a backup of ~2 s).

    .venv/bin/python bench/bench_run_overhead.py [--runs 3] [--scale 3]
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops_pipelines.adapters.cluster import free_port  # noqa: E402
from ops_pipelines.adapters.postgres import connect, with_dbname  # noqa: E402
from ops_pipelines.demo.generator import generate_erp_database  # noqa: E402
from ops_pipelines_tests.dagster_ui import graphql, launch_run, start, wait_for, wait_until_loaded  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
BENCH_DB = "ops_bench_run_erp"
# The baseline: the shipped definitions, every job on Dagster's default (multiprocess) executor.
BASELINE_MODULE = """
import dagster as dg
from ops_pipelines.config import load_config_from_env
from ops_pipelines.definitions import build_definitions

@dg.definitions
def defs():
    shipped = build_definitions(load_config_from_env())
    return dg.Definitions(
        assets=shipped.assets, asset_checks=shipped.asset_checks, jobs=shipped.jobs, schedules=shipped.schedules,
        sensors=shipped.sensors, executor=dg.multiprocess_executor,
    )
"""


def measure(label: str, module: str, pythonpath: str, runs: int, erp_dsn: str) -> list[dict]:
    instance_db = f"ops_bench_run_{uuid.uuid4().hex[:8]}"
    with connect(SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(instance_db)))
    tmp = Path(tempfile.mkdtemp(prefix="ops_bench_run_"))
    processes = []
    try:
        home = tmp / "home"
        home.mkdir()
        shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
        (tmp / "config.yaml").write_text(
            f'backup_store: {{local_dir: {tmp / "backups"}}}\ndatabases:\n  - name: erp\n    dsn: "{erp_dsn}"\n'
        )
        (tmp / "workspace.yaml").write_text(
            f"load_from:\n  - python_module:\n      module_name: {module}\n      location_name: ops_pipelines\n"
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "OPS_PIPELINES"))},
            "DAGSTER_HOME": str(home),
            "OPS_PIPELINES_CONFIG": str(tmp / "config.yaml"),
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": "5432",
            "DAGSTER_PG_USER": "postgres",
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_PG_DB": instance_db,
            "PYTHONPATH": pythonpath,
        }
        port = free_port()
        bin_dir = Path(sys.executable).parent
        for name, args in (
            ("webserver", [bin_dir / "dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]),
            ("daemon", [bin_dir / "dagster-daemon", "run", "-w", "workspace.yaml"]),
        ):
            processes.append(start(args, env, tmp, tmp / f"{name}.log"))
        wait_until_loaded(port, processes[0])
        results = []
        for attempt in range(runs + 1):  # the first run warms the daemon up and is not counted
            launched = time.time()
            run_id = launch_run(port, "backup_job", "erp")
            run = wait_for(f"{label} run {run_id}", lambda run_id=run_id: finished_run(port, run_id), 600)
            if run["status"] != "SUCCESS":
                raise RuntimeError(f"{label}: run {run_id} ended {run['status']}; see {tmp}")
            steps = {s["stepKey"]: s["endTime"] - s["startTime"] for s in run["stepStats"] if s["endTime"]}
            figures = {
                "wall": run["endTime"] - launched,
                "queued": run["startTime"] - launched,
                "worker": run["endTime"] - run["startTime"],
                "backup_step": steps["backup"],
                "all_steps": sum(steps.values()),
                "steps": len(steps),
            }
            if attempt:
                results.append(figures)
            print(f"{label} run {attempt}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()), flush=True)
        return results
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        with connect(SERVER, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(instance_db)))


def finished_run(port: int, run_id: str) -> dict | None:
    run = graphql(
        port,
        """
        query R($id: ID!) {
          runOrError(runId: $id) {
            ... on Run { status startTime endTime stepStats { stepKey startTime endTime } }
          }
        }""",
        {"id": run_id},
    )["runOrError"]
    return run if run["status"] in {"SUCCESS", "FAILURE", "CANCELED"} else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=3)
    args = parser.parse_args()
    generated = generate_erp_database(SERVER, BENCH_DB, args.scale)
    print(f"database {BENCH_DB}: {generated.bytes / 1e6:,.0f} MB (scale {args.scale:g})", flush=True)
    erp_dsn = with_dbname(SERVER, BENCH_DB)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "ops_bench_baseline.py").write_text(BASELINE_MODULE)
        pythonpath = os.pathsep.join([folder, str(REPO)])
        baseline = measure("baseline (multiprocess)", "ops_bench_baseline", pythonpath, args.runs, erp_dsn)
        shipped = measure("shipped (in-process)", "ops_pipelines.definitions", pythonpath, args.runs, erp_dsn)
    print("\n| figure (median) | baseline: multiprocess | shipped: in-process | ratio |")
    print("|---|---:|---:|---:|")
    for key, text in (
        ("wall", "launch to end (wall)"),
        ("queued", "launch to run start (queue + worker start)"),
        ("worker", "run start to end"),
        ("backup_step", "the backup step (the work)"),
        ("all_steps", "all steps and checks, summed"),
    ):
        before = statistics.median(r[key] for r in baseline)
        after = statistics.median(r[key] for r in shipped)
        print(f"| {text} | {before:.2f} s | {after:.2f} s | {before / after:.2f}x |")
    for label, results in (("baseline", baseline), ("shipped", shipped)):
        overhead = statistics.median(r["wall"] - r["backup_step"] for r in results)
        print(f"{label}: run overhead (wall - backup step) {overhead:.2f} s over {results[0]['steps']} steps")
    overhead = statistics.median(r["wall"] - r["backup_step"] for r in shipped)
    print(f"target: overhead under 5 s for a backup run: {'met' if overhead < 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
