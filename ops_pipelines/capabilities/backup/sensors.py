"""`missing_backup_sensor`: a backup of any database whose newest is missing or too old. It reads the
backup listing only (never a dump); each tick costs the same few reads at 5 databases or 500
(bench/RESULTS.md)."""

import datetime as dt

import dagster as dg

from ops_pipelines.adapters.storage import local_storage
from ops_pipelines.capability import CapabilityJob
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backups.catalog import newest_complete_stamp
from ops_pipelines.core.backups.checks import freshness


def build(config: OpsConfig, jobs: tuple[CapabilityJob, ...]) -> list[dg.SensorDefinition]:
    return [missing_backup_sensor(config, jobs[0])]


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
