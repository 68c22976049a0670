"""The weekly report and the Prometheus textfile over many databases with a week of history.

Each configured database points at one real ERP sample (scale 1, generated once as
ops_bench_report_erp on the local server), so the live part (performance, schema health, security
queries) runs for real once per database. The backup store holds 30 daily backups per database
(tiny files: the report lists, it never opens a dump) and the newest restore-ok marker; the
instance holds a week of history per database: a vacuum and a reindex materialization every day
and every check evaluated daily (a tenth of them failing). Baseline in the same run: one database.

    .venv/bin/python bench/bench_report.py [--databases 50] [--server "host=127.0.0.1 user=postgres dbname=postgres"]
"""

import argparse
import datetime as dt
import json
import resource
import tempfile
import time
from pathlib import Path

import dagster as dg
from bench_sensor import record_check  # the same directory: run as bench/bench_report.py

from ops_pipelines.adapters.postgres import with_dbname
from ops_pipelines.automation.metrics_textfile import gather_figures, write_textfile
from ops_pipelines.config import parse_config
from ops_pipelines.core.backups.catalog import stamp_for
from ops_pipelines.definitions import build_definitions
from ops_pipelines.demo.generator import generate_erp_database

ERP = "ops_bench_report_erp"


def make_setup(root: Path, databases: int, dsn: str) -> tuple[dg.Definitions, object, dg.DagsterInstance]:
    now = dt.datetime.now(dt.UTC)
    lines = [
        f"backup_store: {{local_dir: {root / 'store'}}}",
        f"metrics: {{textfile_path: {root / 'textfile' / 'ops.prom'}}}",
        "alerts: {webhook_url: 'http://127.0.0.1:9/hook'}",
        "databases:",
    ]
    for d in range(databases):
        name = f"erp_{d:03d}"
        lines.append(f"  - {{name: {name}, dsn: '{dsn}'}}")
        directory = root / "store" / name
        directory.mkdir(parents=True)
        for b in range(30):
            stamp = stamp_for(now - dt.timedelta(days=b, hours=1))
            (directory / f"{stamp}.dump.zst").write_bytes(b"x" * (1000 + b))
            (directory / f"{stamp}.manifest.json").write_text("{}")
        newest = stamp_for(now - dt.timedelta(hours=1))
        (directory / f"{newest}.restore-ok.json").write_text(
            json.dumps({"finished_at": now.isoformat(), "restore_seconds": 12.5, "sandbox": "local cluster"})
        )
    config = parse_config("\n".join(lines) + "\n", {})
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    checks = list(defs.resolve_asset_graph().asset_check_keys)
    for day in range(7):
        for db in config.databases:
            for asset in ("vacuum_analyze", "reindex"):
                instance.report_runless_asset_event(
                    dg.AssetMaterialization(
                        asset_key=asset,
                        partition=db.name,
                        metadata={"tables_vacuumed": 3, "bytes_reclaimed": 10_000_000, "seconds": 1.5},
                    )
                )
            for i, key in enumerate(checks):
                evaluation = dg.AssetCheckEvaluation(
                    asset_key=key.asset_key,
                    check_name=key.name,
                    passed=(i + day) % 10 != 0,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description="synthetic",
                    partition=db.name,
                )
                record_check(instance, evaluation, f"bench-day-{day}")
    return defs, config, instance


def measure(databases: int, dsn: str) -> dict:
    with tempfile.TemporaryDirectory() as root:
        defs, config, instance = make_setup(Path(root), databases, dsn)
        job = defs.resolve_job_def("maintenance_report_job")
        started = time.perf_counter()
        result = job.execute_in_process(instance=instance)
        report_seconds = time.perf_counter() - started
        assert result.success
        metadata = instance.get_latest_materialization_event(
            dg.AssetKey("maintenance_report")
        ).asset_materialization.metadata
        html_bytes = Path(metadata["html"].value).stat().st_size
        checks = sorted(defs.resolve_asset_graph().asset_check_keys, key=lambda k: k.to_user_string())
        started = time.perf_counter()
        write_textfile(config.metrics.textfile_path, gather_figures(config, instance, checks))
        textfile_seconds = time.perf_counter() - started
        sensor = defs.resolve_sensor_def("check_failure_alert_sensor")
        cursor, ticks = None, []
        for _ in range(2):  # the first tick reads where every check stands; the second finds nothing new
            with dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor) as context:
                started = time.perf_counter()
                cursor = sensor.evaluate_tick(context).cursor
                ticks.append(time.perf_counter() - started)
        return {
            "report": report_seconds,
            "textfile": textfile_seconds,
            "html": html_bytes,
            "check_tick": ticks[1],
            "failed": metadata["failed_checks"].value,
            "actions": metadata["maintenance_actions"].value,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", type=int, default=50)
    parser.add_argument("--server", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    args = parser.parse_args()
    generate_erp_database(args.server, ERP, scale=1)  # reused when present
    dsn = with_dbname(args.server, ERP)
    base = measure(1, dsn)
    big = measure(args.databases, dsn)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        "| databases | report run | per database | HTML | failed checks listed | maintenance actions | textfile "
        "(gather + write) "
        "| check-alert sensor tick |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in ((1, base), (args.databases, big)):
        print(
            f"| {n} | {r['report']:.2f} s | {r['report'] / n * 1000:.0f} ms | {r['html'] / 1e3:.0f} kB | {r['failed']} "
            f"| {r['actions']} | {r['textfile'] * 1000:.0f} ms | {r['check_tick'] * 1000:.0f} ms |"
        )
    print(
        f"\nper-database cost {big['report'] / args.databases / base['report']:.2f}x the one-database run's; "
        f"peak RSS of the process {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
