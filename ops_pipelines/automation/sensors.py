"""Sensors. They read listings only (never a dump) and request runs, deduplicated by run key."""

import datetime as dt
import json

import dagster as dg

from ops_pipelines.assets.backup import backup_stamp
from ops_pipelines.assets.common import asset_key
from ops_pipelines.automation.jobs import CapabilityRun
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backup_catalog import newest_complete_stamp
from ops_pipelines.core.backup_checks import freshness
from ops_pipelines.history import materialization_metadata
from ops_pipelines.resources.storage import local_storage


def build(
    config: OpsConfig, jobs: list, capabilities: dict[str, dict[str, CapabilityRun]]
) -> list[dg.SensorDefinition]:
    return [missing_backup_sensor(config, jobs, capabilities), restore_after_backup_sensor(config, jobs, capabilities)]


def missing_backup_sensor(
    config: OpsConfig, jobs: list, capabilities: dict[str, dict[str, CapabilityRun]]
) -> dg.SensorDefinition:
    storage = local_storage(config)

    @dg.sensor(
        name="missing_backup_sensor",
        jobs=jobs,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "Requests a backup of any database with no complete backup, or whose newest is older than its "
            "max_age_hours: one run per database per gap (the run key names the newest backup seen)."
        ),
    )
    def missing_backup(context: dg.SensorEvaluationContext):
        now = dt.datetime.now(dt.UTC)
        stale = []
        for db in config.databases:
            newest = newest_complete_stamp(storage, db.name)
            verdict = freshness(newest, db.backup.max_age_hours, now)
            if verdict.passed:
                continue
            stale.append(db.name)
            yield capabilities[db.name]["backup"].run_request(
                run_key=f"missing-backup:{db.name}:{newest or 'none'}",
                tags={"ops_pipelines/reason": verdict.description[:200]},
            )
        if not stale:
            yield dg.SkipReason(f"all {len(config.databases)} databases have a backup younger than their max age")

    return missing_backup


def restore_after_backup_sensor(
    config: OpsConfig, jobs: list, capabilities: dict[str, dict[str, CapabilityRun]]
) -> dg.SensorDefinition:
    @dg.sensor(
        name="restore_after_backup_sensor",
        jobs=jobs,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts one restore test for each new materialization of a database's backup.",
    )
    def restore_after_backup(context: dg.SensorEvaluationContext):
        # cursor: per database, the event-log id of the newest backup already handled
        cursor = json.loads(context.cursor) if context.cursor else {}
        for db in config.databases:
            key = asset_key(db, "backup")
            records = context.instance.fetch_materializations(key, limit=1).records
            if not records or records[0].storage_id <= cursor.get(db.name, 0):
                continue
            record = records[0]
            stamp = backup_stamp(materialization_metadata(record))
            cursor[db.name] = record.storage_id
            if stamp is None:
                context.log.warning(
                    f"{db.name}: backup materialization {record.storage_id} names no backup (made by an older version)"
                )
                continue
            yield capabilities[db.name]["restore_test"].run_request(
                run_key=f"restore-test:{db.name}:{stamp}",
                run_config={
                    "ops": {asset_key(db, "restore_test").to_python_identifier(): {"config": {"backup": stamp}}}
                },
                tags={"ops_pipelines/backup": stamp},
            )
        context.update_cursor(json.dumps(cursor, sort_keys=True))

    return restore_after_backup
