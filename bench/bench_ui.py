"""How fast the Dagster UI opens its pages for a fleet of databases, in headless Chromium against
the real dagster-webserver, with a PostgreSQL-backed instance holding each database's history.

Target (the fleet issue): the asset catalog, asset pages and automation pages open in under 3 s
with 500 databases. "Open" is measured from navigation to the moment the page shows what it is
for (a text only the loaded data contains) and no panel says it is still loading, polled every
50 ms. Each page is opened `--repeat` times after one warm-up load (the JavaScript bundle is
cached, as for a DBA who uses the UI); the baseline is the same pages with one database, in the
same run. Screenshots of each page at the larger fleet go to `--screenshots` (bench/screenshots/).

    .venv/bin/python bench/bench_ui.py [--databases 500] [--history 3] [--repeat 3]
"""

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

import dagster as dg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_sensor import backup_event, check_events, make_fleet, record_check  # noqa: E402
from ops_pipelines.adapters.cluster import free_port  # noqa: E402
from ops_pipelines.adapters.postgres import connect  # noqa: E402
from ops_pipelines.config import parse_config  # noqa: E402
from ops_pipelines.definitions import build_definitions  # noqa: E402
from ops_pipelines_tests.browser import browse, find_chromium  # noqa: E402
from ops_pipelines_tests.dagster_ui import start, wait_until_loaded  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
# page, its screenshot's name, path, a text that appears only once the page's data has loaded
PAGES = [
    ("asset catalog", "catalog", "/assets", "backup_retention"),
    ("asset page: backup", "backup", "/assets/backup", "At 02:00"),  # its schedule: the last panel to load
    ("asset page: backup, partitions", "backup_partitions", "/assets/backup?view=partitions", "Materialized ("),
    ("asset page: backup, checks", "backup_checks", "/assets/backup?view=checks", "backup_size_sane"),
    (
        "database_status of one database",
        "database_status_erp_000",
        "/assets/database_status?view=partitions&partition=erp_000",
        "newest backup proven restorable",
    ),
    ("automation (schedules and sensors)", "automation", "/automation", "restore_after_backup_sensor"),
]


def populate(home: Path, url: str, config_text: str, history: int) -> None:
    (home / "dagster.yaml").write_text(
        f"storage:\n  postgres:\n    postgres_url: {url}\ntelemetry:\n  enabled: false\nnux:\n  enabled: false\n"
    )
    config = parse_config(config_text, {})
    defs = build_definitions(config)
    graph = defs.resolve_asset_graph()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for day in range(history):
            for i, db in enumerate(config.databases):
                instance.report_runless_asset_event(backup_event(db.name, day))
                for evaluation in check_events(graph, db.name, failing=day == history - 1 and i % 10 == 0):
                    record_check(instance, evaluation, f"bench-day-{day}")
        # each database's status page, as database_status_sensor records it
        sensor = defs.resolve_sensor_def("database_status_sensor")
        with dg.build_sensor_context(instance=instance, definitions=defs) as context:
            for event in sensor.evaluate_tick(context).asset_events:
                instance.report_runless_asset_event(event)


def measure(databases: int, history: int, repeat: int, chromium: str, shots: Path | None) -> list[tuple[str, float]]:
    dbname = f"ops_bench_ui_{uuid.uuid4().hex[:8]}"
    with connect(SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    tmp = Path(tempfile.mkdtemp(prefix="ops_bench_ui_"))
    processes = []
    try:
        home = tmp / "home"
        home.mkdir()
        config_text = make_fleet(tmp, databases, backups=2)
        (tmp / "config.yaml").write_text(config_text)
        populate(home, f"postgresql://postgres@127.0.0.1:5432/{dbname}", config_text, history)
        port = free_port()
        env = {**os.environ, "DAGSTER_HOME": str(home), "OPS_PIPELINES_CONFIG": str(tmp / "config.yaml")}
        bin_dir = Path(sys.executable).parent
        processes.append(
            start(
                [bin_dir / "dagster-webserver", "-m", "ops_pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)],
                env,
                tmp,
                tmp / "webserver.log",
            )
        )
        wait_until_loaded(port)
        rows = []
        with browse(chromium, tmp) as page:
            for name, shot_name, path, marker in PAGES:
                page.open(f"http://127.0.0.1:{port}{path}", marker)  # warm-up
                seconds = statistics.median(page.open(f"http://127.0.0.1:{port}{path}", marker) for _ in range(repeat))
                rows.append((name, seconds))
                if shots is not None:
                    shots.mkdir(parents=True, exist_ok=True)
                    (shots / f"{databases}_{shot_name}.png").write_bytes(page.screenshot())
        return rows
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
        with connect(SERVER, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", type=int, default=500)
    parser.add_argument("--history", type=int, default=3, help="days of backups and check results per database")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--screenshots", type=Path, default=REPO / "bench" / "screenshots")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    base = measure(1, args.history, args.repeat, chromium, None)
    fleet = measure(args.databases, args.history, args.repeat, chromium, args.screenshots)
    print(f"| page | 1 database | {args.databases} databases |")
    print("|---|---:|---:|")
    for (name, one), (_, many) in zip(base, fleet, strict=True):
        print(f"| {name} | {one:.2f} s | {many:.2f} s |")
    slowest = max(seconds for _, seconds in fleet)
    print(
        f"\nslowest page at {args.databases} databases: {slowest:.2f} s; target under 3 s: "
        f"{'met' if slowest < 3 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
