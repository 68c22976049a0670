"""Sensors. They read listings and the instance's records only (never a dump), and request runs of
one database each, deduplicated by run key. Each tick costs the same few queries at 5 databases or
500 (bench/RESULTS.md)."""

import datetime as dt
import json

import dagster as dg

from ops_pipelines.assets.backup import backup_stamp
from ops_pipelines.automation.jobs import CapabilityJob
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backup_catalog import newest_complete_stamp
from ops_pipelines.core.backup_checks import freshness
from ops_pipelines.history import latest_materializations, materialization_metadata
from ops_pipelines.resources.storage import local_storage

BACKUP = dg.AssetKey("backup")
OFFSITE_COPY = dg.AssetKey("offsite_copy")
OFFSITE_DRILL = dg.AssetKey("offsite_restore_test")
RECORDS_PER_TICK = 1000  # backup materializations read per tick; the rest wait for the next


def build(config: OpsConfig, jobs: list[CapabilityJob]) -> list[dg.SensorDefinition]:
    sensors = []
    backup_job = next((job for job in jobs if job.capability == "backup"), None)
    restore_job = next((job for job in jobs if job.capability == "restore_test"), None)
    if backup_job is not None:
        sensors.append(missing_backup_sensor(config, backup_job))
    if backup_job is not None and restore_job is not None:
        sensors.append(restore_after_backup_sensor(restore_job))
    drill_job = next((job for job in jobs if job.capability == "offsite_restore_test"), None)
    if drill_job is not None and any(db.restore_test.offsite_every_backups for db in config.databases):
        sensors.append(offsite_drill_sensor(config, drill_job))
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


def offsite_drill_sensor(config: OpsConfig, drill: CapabilityJob) -> dg.SensorDefinition:
    every = {db.name: db.restore_test.offsite_every_backups for db in config.databases}

    @dg.sensor(
        name="offsite_drill_sensor",
        job_name=drill.name,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts the off-site drill (offsite_restore_test) of a database after every "
        "restore_test.offsite_every_backups off-site copies since its last drill (10 unless configured; the monthly "
        "schedule runs it too). Copies are counted from the sensor's first tick on.",
    )
    def offsite_drill(context: dg.SensorEvaluationContext):
        # cursor: {"after": the newest event-log id handled, "copies": {database: copies since its last drill}}
        state = json.loads(context.cursor) if context.cursor else None
        if state is None:  # first tick: count from now on (a fleet's whole history is not read)
            newest = context.instance.get_latest_storage_id_by_partition(
                OFFSITE_COPY, dg.DagsterEventType.ASSET_MATERIALIZATION
            )
            context.update_cursor(json.dumps({"after": max(newest.values(), default=0), "copies": {}}))
            return dg.SkipReason("counting off-site copies from now on")
        records = sorted(
            (
                record
                for key in (OFFSITE_COPY, OFFSITE_DRILL)
                for record in context.instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=key, after_storage_id=state["after"]),
                    limit=RECORDS_PER_TICK,
                    ascending=True,
                ).records
            ),
            key=lambda r: r.storage_id,
        )
        if len(records) > RECORDS_PER_TICK:  # two reads of up to the limit each: handle the oldest only
            records = records[:RECORDS_PER_TICK]
        copies: dict[str, int] = state["copies"]
        due: dict[str, str] = {}
        for record in records:
            database = record.partition_key
            if database is None or database not in drill.fleet.names or not every.get(database):
                continue
            if record.asset_key == OFFSITE_DRILL:  # a drill passed (scheduled, sensed or by hand): count anew
                copies.pop(database, None)
                due.pop(database, None)
                continue
            copies[database] = copies.get(database, 0) + 1
            if copies[database] >= every[database]:
                stamp = materialization_metadata(record).get("backup")
                due[database] = stamp.value if stamp is not None else str(record.storage_id)
                copies.pop(database)
        if records:
            state["after"] = records[-1].storage_id
        context.update_cursor(json.dumps({"after": state["after"], "copies": copies}))
        return [
            drill.run_request(
                database,
                run_key=f"offsite-drill:{database}:{stamp}",
                tags={"ops_pipelines/reason": f"{every[database]} off-site copies since the last drill"},
            )
            for database, stamp in due.items()
        ] or dg.SkipReason(f"no database has reached its count of off-site copies ({len(copies)} counting)")

    return offsite_drill
