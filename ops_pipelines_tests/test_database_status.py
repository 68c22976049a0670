"""`database_status`: one database's answer on one page, recorded by a sensor when it changes."""

import dagster as dg

from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines_tests.helpers import make_config


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    sensor = defs.resolve_sensor_def("database_status_sensor")
    with dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor) as context:
        return sensor.evaluate_tick(context)


def latest_status(instance: dg.DagsterInstance, database: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("database_status"), asset_partitions=[database]), limit=1
    ).records
    return records[0].asset_materialization.metadata if records else None


def test_status_names_the_newest_backup_the_proven_one_and_failing_checks_per_database(tmp_path, erp_db):
    config = make_config(tmp_path, {"erp": erp_db, "mes": "host=127.0.0.1 port=1 dbname=mes connect_timeout=1"})
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()

    first = tick(defs, instance, None)  # nothing yet: each database is recorded once, with no backup
    assert sorted(e.partition for e in first.asset_events) == ["erp", "mes"]
    for event in first.asset_events:
        instance.report_runless_asset_event(event)
    assert latest_status(instance, "erp")["newest_backup"].value == "none"
    quiet = tick(defs, instance, first.cursor)
    assert quiet.asset_events == [] and "no change" in quiet.skip_message

    backup = capability_job(defs, config, "erp", "backup").execute_in_process(partition_key="erp", instance=instance)
    assert backup.success  # its restore_recent fails: no restore test yet
    after_backup = tick(defs, instance, quiet.cursor)
    assert [e.partition for e in after_backup.asset_events] == ["erp"]  # mes did not change
    for event in after_backup.asset_events:
        instance.report_runless_asset_event(event)
    status = latest_status(instance, "erp")
    stamp = status["newest_backup"].value
    assert stamp != "none" and status["newest_backup_proven"].value == "none"
    assert status["failing_checks"].value == 1 and "restore_test:restore_recent" in status["summary"].value

    restore = capability_job(defs, config, "erp", "restore_test").execute_in_process(
        partition_key="erp", instance=instance
    )
    assert restore.success  # it evaluates restore_recent again: now it passes
    after_restore = tick(defs, instance, after_backup.cursor)
    for event in after_restore.asset_events:
        instance.report_runless_asset_event(event)
    status = latest_status(instance, "erp")
    assert status["newest_backup_proven"].value == stamp and status["newest_is_proven"].value
    assert status["restore_seconds"].value > 0 and status["failing_checks"].value == 0
    assert "No check fails" in status["summary"].value
    assert latest_status(instance, "mes")["newest_backup"].value == "none"
