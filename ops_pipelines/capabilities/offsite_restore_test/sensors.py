"""`offsite_drill_sensor`: the off-site drill of a database after every N off-site copies. It reads
the instance's records only (never a dump) and requests a run per database, deduplicated by run key."""

import json

import dagster as dg

from ops_pipelines.capabilities.common import RECORDS_PER_TICK
from ops_pipelines.capability import CapabilityJob
from ops_pipelines.config import OpsConfig
from ops_pipelines.history import materialization_metadata
from ops_pipelines.records.backup import OffsiteCopyRecord

OFFSITE_COPY = dg.AssetKey("offsite_copy")
OFFSITE_DRILL = dg.AssetKey("offsite_restore_test")


def build(config: OpsConfig, jobs: tuple[CapabilityJob, ...]) -> list[dg.SensorDefinition]:
    """Only when some database counts copies (restore_test.offsite_every_backups)."""
    if not any(db.restore_test.offsite_every_backups for db in config.databases):
        return []
    return [offsite_drill_sensor(config, jobs[0])]


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
                copy = OffsiteCopyRecord.from_metadata(materialization_metadata(record))
                due[database] = copy.backup if copy is not None else str(record.storage_id)
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
