"""`restore_after_backup_sensor`: one restore test of each new backup. It reads the instance's
backup materializations only (never a dump), one query per tick for the whole fleet, and requests a
run per database, deduplicated by run key."""

import dagster as dg

from ops_pipelines.capabilities.common import RECORDS_PER_TICK
from ops_pipelines.capability import CapabilityJob
from ops_pipelines.config import OpsConfig
from ops_pipelines.history import latest_materializations, materialization_metadata
from ops_pipelines.records.backup import backup_stamp

BACKUP = dg.AssetKey("backup")


def build(config: OpsConfig, jobs: tuple[CapabilityJob, ...]) -> list[dg.SensorDefinition]:
    return [restore_after_backup_sensor(jobs[0])]


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
