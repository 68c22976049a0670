"""The demo: a local PostgreSQL cluster, a sample ERP database, a Dagster instance in PostgreSQL,
every asset materialized once, then the UI. Run through ./scripts/demo.sh (which makes the venv).

    ./scripts/demo.sh [--no-ui | --ui-only | --stop] [--scale 1] [--port 3000]   (--help says more)

Everything lives under .demo/ (or $OPS_DEMO_DIR), which git ignores; a re-run reuses it.
"""

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from psycopg import sql

from ops_pipelines import registry
from ops_pipelines.adapters.cluster import LocalCluster, free_port
from ops_pipelines.adapters.postgres import connect, one
from ops_pipelines.config import CONFIG_ENV_VAR, OpsConfig, load_config
from ops_pipelines.core.capacity.samples import import_csv, read_history
from ops_pipelines.demo.generator import generate_erp_database
from ops_pipelines.errors import OpsError
from ops_pipelines.files import atomic_write_text

REPO = Path(__file__).resolve().parents[2]
DEMO_DB = "erp_demo"
INSTANCE_DB = "dagster"
STOP_GRACE_SECONDS = 20


def demo_dir() -> Path:
    return Path(os.environ.get("OPS_DEMO_DIR") or REPO / ".demo").resolve()


def demo_cluster(directory: Path) -> LocalCluster:
    """The demo's cluster, on the port it was given the first time (kept in cluster.json)."""
    state = directory / "cluster.json"
    port = json.loads(state.read_text())["port"] if state.exists() else free_port()
    cluster = LocalCluster(data_dir=directory / "pgdata", port=port)
    if not state.exists():
        atomic_write_text(state, json.dumps({"port": port}) + "\n")
    return cluster


def write_demo_config(directory: Path, cluster: LocalCluster) -> Path:
    path = directory / "config.yaml"
    text = f"""\
# Written by the demo (ops_pipelines/demo/runner.py); edit your own copy, not this one.
timezone: Asia/Ho_Chi_Minh
backup_store:
  local_dir: {directory / "backups"}
metrics:
  dsn: "{cluster.dsn("ops_metrics")}"
  textfile_path: {directory / "metrics" / "ops_pipelines.prom"}
reports:
  dir: {directory / "reports"}
databases:
  - name: {DEMO_DB}
    description: Sample ERP database made by ops_pipelines.demo.generator
    dsn: "{cluster.dsn(DEMO_DB)}"
    capacity:
      volume_capacity: 250MB    # the demo server's "disk": all its databases count against it
    archive:
      - name: completed_orders
        table: public.orders
        age_column: completed_at
        older_than: 365 days
        status_column: status
        status_in: [completed]
        children:
          - {{table: public.order_lines, fk: order_id}}
        destination: {{schema: archive}}
        batch_size: 5000
"""
    atomic_write_text(path, text)
    load_config(path)  # the demo must never write a config its own code rejects
    return path


def instance_env(directory: Path, cluster: LocalCluster, config_path: Path) -> dict[str, str]:
    home = directory / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    atomic_write_text(home / "dagster.yaml", (REPO / "dagster.yaml").read_text())
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(cluster.port),
        "DAGSTER_PG_USER": "postgres",
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": INSTANCE_DB,
        CONFIG_ENV_VAR: str(config_path),
    }


def import_demo_history(directory: Path, cluster: LocalCluster) -> int:
    """Four months of made-up growth ending at today's size, imported once (labelled "imported"),
    so the forecast has something to say on day one, as a team would start from Grafana's numbers."""
    metrics = cluster.dsn("ops_metrics")
    if read_history(metrics, DEMO_DB).imported:
        return 0
    with connect(cluster.dsn(), autocommit=True) as conn:
        used_now = one(
            conn.execute("SELECT sum(pg_database_size(datname))::bigint AS b FROM pg_database WHERE datallowconn")
        )["b"]
    today, rng = dt.date.today(), random.Random(7)
    rows = [
        (today - dt.timedelta(days=d), int(used_now - d * 400_000 + rng.gauss(0, 300_000))) for d in range(120, 0, -1)
    ]
    path = directory / "capacity_history.csv"
    atomic_write_text(path, "date,bytes\n" + "".join(f"{day},{size}\n" for day, size in rows))
    return import_csv(metrics, DEMO_DB, path)


def ensure_database(cluster: LocalCluster, dbname: str) -> None:
    with connect(cluster.dsn(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def run_demo(scale: float, ui: bool, ui_port: int, materialize: bool = True) -> int:
    directory = demo_dir()
    directory.mkdir(parents=True, exist_ok=True)
    cluster = demo_cluster(directory)
    step(f"PostgreSQL cluster in {cluster.data_dir} on 127.0.0.1:{cluster.port}")
    cluster.init()
    cluster.start()

    step(f"sample ERP database {DEMO_DB} (scale {scale:g})")
    generated = generate_erp_database(cluster.dsn(), DEMO_DB, scale)
    print(f"   {'reused' if generated.reused else 'generated'}: {generated.bytes / 1e6:.1f} MB")
    for dbname in (INSTANCE_DB, "ops_metrics"):
        ensure_database(cluster, dbname)

    config_path = write_demo_config(directory, cluster)
    imported = import_demo_history(directory, cluster)
    if imported:
        print(f"   imported {imported} days of capacity history (labelled imported) for the first forecast")
    env = instance_env(directory, cluster, config_path)
    step(f"config {config_path}; Dagster instance {env['DAGSTER_HOME']} (runs stored in PostgreSQL)")

    dagster = [sys.executable, "-m", "dagster"]
    marker = directory / "materialized"
    if materialize:
        step(f"materializing every asset once (partition {DEMO_DB}: the demo's one database)")
        subprocess.run(
            [
                *dagster,
                *("asset", "materialize", "--select", "*", "--partition", DEMO_DB, "-m", "ops_pipelines.definitions"),
                *("--config-json", json.dumps(confirm_destructive(load_config(config_path)))),
            ],
            env=env,
            cwd=REPO,
            check=True,
        )
        atomic_write_text(marker, dt.datetime.now(dt.UTC).isoformat() + "\n")
    elif not marker.exists():
        print("   nothing materialized yet: run the demo once without --ui-only to fill the UI")
    else:
        print(f"   --ui-only: showing what was materialized at {marker.read_text().strip()} (UTC)")
    reports = sorted((directory / "reports").glob("maintenance_report_*.html"))
    if reports:
        print(f"\nThe weekly report: {reports[-1]} (open it in a browser; Markdown beside it)")
    print(
        f"\nTo use this instance from another shell:\n"
        f"  export DAGSTER_HOME={env['DAGSTER_HOME']} {CONFIG_ENV_VAR}={config_path} "
        f"DAGSTER_PG_HOST=127.0.0.1 DAGSTER_PG_PORT={cluster.port} DAGSTER_PG_USER=postgres "
        f"DAGSTER_PG_PASSWORD= DAGSTER_PG_DB={INSTANCE_DB}"
    )
    if not ui:
        step("done (--no-ui: not starting the UI)")
        return 0
    step(f"starting the Dagster UI on http://127.0.0.1:{ui_port} (Ctrl-C stops it; the cluster keeps running)")
    return serve_ui([*dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(ui_port)], env)


def confirm_destructive(config: OpsConfig) -> dict:
    """Run config for `dagster asset materialize`: the demo means to run the destructive assets
    (archival, maintenance window), which a casual "Materialize all" leaves alone."""
    names = [name for name in registry.fleets(config) if name.startswith("archive_") or name == "maintenance_window"]
    return {"ops": {name: {"config": {"confirm": True}} for name in names}}


def serve_ui(command: list[str], env: dict[str, str]) -> int:
    """`dagster dev` in a session of its own, stopped cleanly on Ctrl-C or SIGTERM: SIGINT to it (it
    stops its webserver, daemon and code servers), then, after STOP_GRACE_SECONDS, SIGKILL to
    whatever of its session is left, so no process outlives the demo."""
    process = subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        return process.wait()
    except KeyboardInterrupt:
        step("stopping the Dagster UI")
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            print(f"   not stopped after {STOP_GRACE_SECONDS} s: killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its webserver, daemon and code servers, if any is left
        process.wait()
        step("stopped (the demo cluster keeps running: --stop stops it)")
        return 0


def stop_demo() -> int:
    directory = demo_dir()
    if not (directory / "cluster.json").exists():
        print("no demo cluster to stop")
        return 0
    demo_cluster(directory).stop()
    step(f"stopped the demo cluster in {directory / 'pgdata'}")
    return 0


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./scripts/demo.sh",
        description="The ops_pipelines demo: a local PostgreSQL cluster with a sample ERP database (erp_demo), a "
        "Dagster instance stored in it, every asset materialized once for erp_demo (backup, restore test, "
        "vacuum, reindex, archival, capacity, the weekly report), then the Dagster UI. About 20 s once the "
        "venv is installed; everything lives in .demo/ (or $OPS_DEMO_DIR) and a re-run reuses it.",
        epilog="Ctrl-C (or SIGTERM) stops the UI and everything it started; the cluster keeps running until --stop.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-ui", action="store_true", help="stop after materializing (for scripts and CI)")
    mode.add_argument("--ui-only", action="store_true", help="the UI on what is there, materialize nothing")
    mode.add_argument("--stop", action="store_true", help="stop the demo's PostgreSQL cluster and exit")
    parser.add_argument("--scale", type=float, default=1.0, help="sample database scale (default 1: about 37 MB)")
    parser.add_argument("--port", type=int, default=3000, help="port of the Dagster UI (default 3000)")
    args = parser.parse_args(argv)
    try:
        if args.stop:
            return stop_demo()
        return run_demo(args.scale, ui=not args.no_ui, ui_port=args.port, materialize=not args.ui_only)
    except OpsError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"demo failed: {' '.join(map(str, exc.cmd[:5]))} exited with {exc.returncode}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
