"""The missing-backup sensor and the backup schedules."""

import datetime as dt

import dagster as dg

from ops_pipelines.adapters.storage import LocalStorage
from ops_pipelines.core.backups.catalog import stamp_for
from ops_pipelines.definitions import build_definitions
from ops_pipelines_tests.helpers import make_config


def evaluate(defs: dg.Definitions, instance: dg.DagsterInstance) -> list:
    sensor = defs.resolve_sensor_def("missing_backup_sensor")
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        result = sensor(context)
    return result if isinstance(result, list) else [result]


def test_sensor_requests_one_run_per_stale_database_and_none_when_fresh(tmp_path):
    dsn = "host=127.0.0.1 dbname=unused"
    config = make_config(tmp_path, {"fresh_db": dsn, "stale_db": dsn, "never_db": dsn})
    storage = LocalStorage(tmp_path)
    now = dt.datetime.now(dt.UTC)
    for name, age in (("fresh_db", 1), ("stale_db", 30)):
        stamp = stamp_for(now - dt.timedelta(hours=age))
        storage.write_bytes(f"{name}/{stamp}.dump.zst", b"d")
        storage.write_bytes(f"{name}/{stamp}.manifest.json", b"{}")
    storage.write_bytes(f"never_db/{stamp_for(now)}.dump.zst", b"partial")  # no manifest: not a backup

    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    requests = evaluate(defs, instance)
    assert sorted((r.job_name, r.partition_key, r.run_key.rsplit(":", 1)[0]) for r in requests) == [
        ("backup_job", "never_db", "missing-backup:never_db"),
        ("backup_job", "stale_db", "missing-backup:stale_db"),
    ]
    stale_key = next(r.run_key for r in requests if r.partition_key == "stale_db")
    assert stale_key == f"missing-backup:stale_db:{stamp_for(now - dt.timedelta(hours=30))}"
    # The same gap gives the same run keys, so Dagster launches it once.
    assert sorted(r.run_key for r in evaluate(defs, instance)) == sorted(r.run_key for r in requests)

    for name in ("stale_db", "never_db"):
        stamp = stamp_for(now)
        storage.write_bytes(f"{name}/{stamp}.dump.zst", b"d")
        storage.write_bytes(f"{name}/{stamp}.manifest.json", b"{}")
    result = evaluate(defs, instance)
    assert len(result) == 1 and isinstance(result[0], dg.SkipReason)


def test_backup_schedules_run_daily_at_two_in_the_configured_zone(tmp_path):
    config = make_config(tmp_path, {"erp": "host=127.0.0.1 dbname=unused"})
    schedule = build_definitions(config).resolve_schedule_def("backup_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 2 * * *", "Asia/Ho_Chi_Minh")
    assert schedule.job_name == "backup_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_the_backup_schedule_requests_one_run_per_database_keyed_by_its_tick(tmp_path):
    """At a fleet's scale one schedule serves every database: a run per partition, each run key
    naming the database and the tick, so a tick evaluated twice launches nothing twice."""
    names = [f"tenant_{i:03d}" for i in range(120)]
    config = make_config(tmp_path, dict.fromkeys(names, "host=127.0.0.1 dbname=unused"))
    schedule = build_definitions(config).resolve_schedule_def("backup_schedule")
    at = dt.datetime(2026, 11, 23, 2, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    requests = schedule(dg.build_schedule_context(scheduled_execution_time=at))
    assert [r.partition_key for r in requests] == names
    assert {r.job_name for r in requests} == {"backup_job"}
    assert requests[7].run_key == "backup_job:tenant_007:2026-11-23T02:00"
    assert requests[7].tags["ops_pipelines/database"] == "tenant_007"
