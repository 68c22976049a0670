"""Sensor ticks over a fleet: 500 databases, their backup listings and a Dagster history.

Target (the fleet issue): every sensor tick at 500 databases stays under 10 s. Measured on a
PostgreSQL-backed instance (as deployed: dagster-postgres) in a new database on the local server,
with each database's history written as Dagster writes it (materializations and check evaluations
of its partition). Ticks measured:

- missing_backup: lists every database's backup folder (`--backups` backups each); one gap;
- restore_after_backup, first tick: the newest backup of every database (one request each);
- restore_after_backup, steady: one new backup of every database since the last tick;
- check_failure_alert: a check evaluation of every check of every database since the last tick,
  a tenth of them failing (the webhook receiver is down: alerts wait in the cursor);
- metrics_textfile: the gauges of every database;
- database_status: every database's status page, first recorded, then unchanged.

The baseline is the same ticks with one database, in the same run.

    .venv/bin/python bench/bench_sensor.py [--databases 500] [--backups 60] [--history 5]
"""

import argparse
import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg
from psycopg import sql

from ops_pipelines.adapters.postgres import connect
from ops_pipelines.config import parse_config
from ops_pipelines.core.backups.catalog import stamp_for
from ops_pipelines.definitions import build_definitions

SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def make_fleet(root: Path, databases: int, backups: int) -> str:
    now = dt.datetime.now(dt.UTC)
    lines = [
        f"backup_store: {{local_dir: {root / 'backups'}}}",
        "alerts: {webhook_url: 'http://127.0.0.1:9/down', attempts: 1, timeout: 1s}",
        f"metrics: {{textfile_path: {root / 'textfile' / 'ops.prom'}}}",
        "databases:",
    ]
    for d in range(databases):
        name = f"erp_{d:03d}"
        lines.append(f"  - {{name: {name}, dsn: 'host=db{d} dbname=erp'}}")
        directory = root / "backups" / name
        directory.mkdir(parents=True)
        # every database but the last is fresh; the last has a gap, so the tick requests one run
        newest = now - dt.timedelta(hours=1 if d < databases - 1 else 40)
        for b in range(backups):
            stamp = stamp_for(newest - dt.timedelta(days=b))
            (directory / f"{stamp}.dump.zst").touch()
            (directory / f"{stamp}.manifest.json").touch()
    return "\n".join(lines) + "\n"


def backup_event(database: str, day: int) -> dg.AssetMaterialization:
    stamp = f"2026{1 + day // 28:02d}{1 + day % 28:02d}T020000Z"
    return dg.AssetMaterialization("backup", partition=database, metadata={"backup_stamp": stamp, "bytes": 10**8})


def check_events(graph, database: str, failing: bool) -> list[dg.AssetCheckEvaluation]:
    return [
        dg.AssetCheckEvaluation(
            asset_key=key.asset_key,
            check_name=key.name,
            passed=not (failing and key.name == "backup_fresh"),
            severity=dg.AssetCheckSeverity.ERROR,
            description="measured by the benchmark",
            partition=database,
        )
        for key in graph.asset_check_keys
    ]


def record_check(instance: dg.DagsterInstance, evaluation: dg.AssetCheckEvaluation, run_id: str) -> None:
    """Store a check result as a run stores it (Dagster keeps one run-less result per check and partition)."""
    event = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.ASSET_CHECK_EVALUATION.value,
        event_specific_data=evaluation,
        job_name="bench",
    )
    instance.report_dagster_event(event, run_id=run_id)


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, name: str, cursor: str | None) -> tuple[float, str, str]:
    """One tick as the daemon evaluates it: (seconds, what it did, the new cursor)."""
    sensor = defs.resolve_sensor_def(name)
    with dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor) as context:
        started = time.perf_counter()
        result = sensor.evaluate_tick(context)
        seconds = time.perf_counter() - started
    if result.run_requests:
        note = f"{len(result.run_requests)} run requests"
    elif result.asset_events:
        note = f"{len(result.asset_events)} statuses recorded"
    else:
        note = (result.skip_message or "")[:70]
    return seconds, note, result.cursor or ""


def measure(databases: int, backups: int, history: int) -> list[tuple[str, float, str]]:
    dbname = f"ops_bench_{uuid.uuid4().hex[:8]}"
    with connect(SERVER, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = "postgresql://postgres@127.0.0.1:5432/" + dbname
    rows = []
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as instance,
        ):
            config = parse_config(make_fleet(Path(tmp), databases, backups), {})
            defs = build_definitions(config)
            graph = defs.resolve_asset_graph()
            names = [db.name for db in config.databases]
            for day in range(history):
                for name in names:
                    instance.report_runless_asset_event(backup_event(name, day))
                    for evaluation in check_events(graph, name, failing=False):
                        record_check(instance, evaluation, f"bench-day-{day}")
            seconds, note, _ = tick(defs, instance, "missing_backup_sensor", None)
            rows.append(("missing_backup", seconds, note))
            seconds, note, restore_cursor = tick(defs, instance, "restore_after_backup_sensor", None)
            rows.append(("restore_after_backup, first tick", seconds, note))
            seconds, note, alert_cursor = tick(defs, instance, "check_failure_alert_sensor", None)
            rows.append(("check_failure_alert, first tick", seconds, note))
            for i, name in enumerate(names):  # one more day: a backup and every check of every database
                instance.report_runless_asset_event(backup_event(name, history))
                for evaluation in check_events(graph, name, failing=i % 10 == 0):
                    record_check(instance, evaluation, f"bench-day-{history}")
            seconds, note, _ = tick(defs, instance, "restore_after_backup_sensor", restore_cursor)
            rows.append(("restore_after_backup, a new backup of each", seconds, note))
            seconds, note, _ = tick(defs, instance, "check_failure_alert_sensor", alert_cursor)
            rows.append(("check_failure_alert, every check of each evaluated", seconds, note))
            seconds, note, _ = tick(defs, instance, "metrics_textfile_sensor", None)
            rows.append(("metrics_textfile", seconds, note))
            seconds, note, status_cursor = tick(defs, instance, "database_status_sensor", None)
            rows.append(("database_status, first tick (every database recorded)", seconds, note))
            seconds, note, _ = tick(defs, instance, "database_status_sensor", status_cursor)
            rows.append(("database_status, nothing changed", seconds, note))
    finally:
        with connect(SERVER, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", type=int, default=500)
    parser.add_argument("--backups", type=int, default=60, help="backup files per database in the store")
    parser.add_argument("--history", type=int, default=5, help="days of Dagster history per database")
    args = parser.parse_args()
    base = measure(1, args.backups, args.history)
    fleet = measure(args.databases, args.backups, args.history)
    print(f"| tick | 1 database | {args.databases} databases | result at {args.databases} |")
    print("|---|---:|---:|---|")
    for (what, one, _), (_, many, note) in zip(base, fleet, strict=True):
        print(f"| {what} | {one:.2f} s | {many:.2f} s | {note} |")
    slowest = max(seconds for _, seconds, _ in fleet)
    print(
        f"\nslowest tick at {args.databases} databases: {slowest:.2f} s; target under 10 s: "
        f"{'met' if slowest < 10 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
