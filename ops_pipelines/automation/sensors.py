"""Sensors. They read listings and the instance's records only (never a dump), and request runs of
one database each, deduplicated by run key. Each tick costs the same few queries at 5 databases or
500 (bench/RESULTS.md)."""

import datetime as dt

import dagster as dg

from ops_pipelines.assets.backup import backup_stamp
from ops_pipelines.automation.jobs import CapabilityJob
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backup_catalog import newest_complete_stamp
from ops_pipelines.core.backup_checks import freshness
from ops_pipelines.history import latest_materializations, materialization_metadata
from ops_pipelines.resources.storage import local_storage

BACKUP = dg.AssetKey("backup")
RECORDS_PER_TICK = 1000  # backup materializations read per tick; the rest wait for the next


def build(config: OpsConfig, jobs: list[CapabilityJob]) -> list[dg.SensorDefinition]:
    sensors = []
    backup_job = next((job for job in jobs if job.capability == "backup"), None)
    restore_job = next((job for job in jobs if job.capability == "restore_test"), None)
    if backup_job is not None:
        sensors.append(missing_backup_sensor(config, backup_job))
    if backup_job is not None and restore_job is not None:
        sensors.append(restore_after_backup_sensor(restore_job))
    return sensors


def missing_backup_sensor(config: OpsConfig, backup: CapabilityJob) -> dg.SensorDefinition:
    storage = local_storage(config)

    @dg.sensor(
        name="missing_backup_sensor",
        job_name=backup.name,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "Requests a backup of any database with no complete backup, or whose newest is older than its "
            "max_age_hours: one run per database per gap (the run key names the newest backup seen)."
        ),
    )
    def missing_backup(context: dg.SensorEvaluationContext):
        now = dt.datetime.now(dt.UTC)
        requests = []
        for db in config.databases:
            newest = newest_complete_stamp(storage, db.name)
            verdict = freshness(newest, db.backup.max_age_hours, now)
            if not verdict.passed:
                requests.append(
                    backup.run_request(
                        db.name,
                        run_key=f"missing-backup:{db.name}:{newest or 'none'}",
                        tags={"ops_pipelines/reason": verdict.description[:200]},
                    )
                )
        if not requests:
            return dg.SkipReason(f"all {len(config.databases)} databases have a backup younger than their max age")
        return requests

    return missing_backup


def restore_after_backup_sensor(restore: CapabilityJob) -> dg.SensorDefinition:
    @dg.sensor(
        name="restore_after_backup_sensor",
        job_name=restore.name,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts one restore test of each new backup, for every database: one query per tick reads the "
        "backup materializations of all databases since the last.",
    )
    def restore_after_backup(context: dg.SensorEvaluationContext):
        # cursor: the event-log id of the newest backup materialization already handled (any database)
        if context.cursor:
            records = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=BACKUP, after_storage_id=int(context.cursor)),
                limit=RECORDS_PER_TICK,
                ascending=True,
            ).records
        else:  # first tick: the newest backup of each database (two queries, however long the history)
            records = sorted(latest_materializations(context.instance, BACKUP).values(), key=lambda r: r.storage_id)
        newest_per_database: dict[str, str] = {}
        for record in records:
            stamp = backup_stamp(materialization_metadata(record))
            database = record.partition_key
            if stamp is None or database is None or database not in restore.fleet.names:
                context.log.warning(f"backup materialization {record.storage_id} names no backup or database")
                continue
            newest_per_database[database] = stamp  # ascending: a later backup of the same database wins
        if records:
            context.update_cursor(str(records[-1].storage_id))
        return [
            restore.run_request(
                database,
                run_key=f"restore-test:{database}:{stamp}",
                run_config={"ops": {"restore_test": {"config": {"backup": stamp}}}},
                tags={"ops_pipelines/backup": stamp},
            )
            for database, stamp in newest_per_database.items()
        ] or dg.SkipReason("no new backup")

    return restore_after_backup
