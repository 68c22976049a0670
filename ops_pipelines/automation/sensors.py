"""Sensors. They read listings only (never a dump) and request runs, deduplicated by run key."""

import datetime as dt

import dagster as dg

from ops_pipelines.automation.jobs import backup_job_name
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backup_checks import freshness
from ops_pipelines.core.backup_catalog import newest_complete_stamp
from ops_pipelines.resources.storage import local_storage


def build(config: OpsConfig, backup_jobs: list) -> list[dg.SensorDefinition]:
    return [missing_backup_sensor(config, backup_jobs)]


def missing_backup_sensor(config: OpsConfig, backup_jobs: list) -> dg.SensorDefinition:
    storage = local_storage(config)

    @dg.sensor(
        name="missing_backup_sensor",
        jobs=backup_jobs,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "Requests a backup of any database with no complete backup, or whose newest is older than its "
            "max_age_hours: one run per database per gap (the run key names the newest backup seen)."
        ),
    )
    def missing_backup(context: dg.SensorEvaluationContext):
        now = dt.datetime.now(dt.timezone.utc)
        stale = []
        for db in config.databases:
            newest = newest_complete_stamp(storage, db.name)
            verdict = freshness(newest, db.backup.max_age_hours, now)
            if verdict.passed:
                continue
            stale.append(db.name)
            yield dg.RunRequest(
                run_key=f"missing-backup:{db.name}:{newest or 'none'}",
                job_name=backup_job_name(db),
                tags={"ops_pipelines/database": db.name, "ops_pipelines/reason": verdict.description[:200]},
            )
        if not stale:
            yield dg.SkipReason(f"all {len(config.databases)} databases have a backup younger than their max age")

    return missing_backup
