"""The demo: a local PostgreSQL cluster, a sample ERP database, a Dagster instance in PostgreSQL,
every asset materialized once, then the UI. Run through ./scripts/demo.sh (which makes the venv).

    python -m ops_pipelines.demo [--no-ui] [--scale 1] [--port 3000] [--stop]

Everything lives under .demo/ (or $OPS_DEMO_DIR), which git ignores; a re-run reuses it.
"""

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from psycopg import sql

from ops_pipelines.config import CONFIG_ENV_VAR, load_config
from ops_pipelines.core.capacity import import_csv, read_history
from ops_pipelines.demo.generator import generate_erp_database
from ops_pipelines.errors import OpsError
from ops_pipelines.files import atomic_write_text
from ops_pipelines.resources.cluster import LocalCluster, free_port
from ops_pipelines.resources.postgres import connect, one

REPO = Path(__file__).resolve().parents[2]
DEMO_DB = "erp_demo"
INSTANCE_DB = "dagster"


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


def run_demo(scale: float, ui: bool, ui_port: int) -> int:
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

    step(f"materializing every asset once (partition {DEMO_DB}: the demo's one database)")
    dagster = [sys.executable, "-m", "dagster"]
    subprocess.run(
        [*dagster, "asset", "materialize", "--select", "*", "--partition", DEMO_DB, "-m", "ops_pipelines.definitions"],
        env=env,
        cwd=REPO,
        check=True,
    )
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
    os.chdir(REPO)
    os.execvpe(sys.executable, [*dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(ui_port)], env)
    return 0  # not reached


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
    parser = argparse.ArgumentParser(prog="python -m ops_pipelines.demo", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--no-ui", action="store_true", help="stop after materializing (for scripts and CI)")
    parser.add_argument("--scale", type=float, default=1.0, help="sample database scale (1 = a few MB)")
    parser.add_argument("--port", type=int, default=3000, help="port of the Dagster UI")
    parser.add_argument("--stop", action="store_true", help="stop the demo's PostgreSQL cluster and exit")
    args = parser.parse_args(argv)
    try:
        return stop_demo() if args.stop else run_demo(args.scale, not args.no_ui, args.port)
    except OpsError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"demo failed: {' '.join(map(str, exc.cmd[:5]))} exited with {exc.returncode}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
