"""Schedules, in the config's time zone (Dagster's default would be UTC)."""

import dagster as dg

from ops_pipelines.automation.jobs import backup_job_name
from ops_pipelines.config import OpsConfig


def build(config: OpsConfig) -> list[dg.ScheduleDefinition]:
    return [
        dg.ScheduleDefinition(
            name=f"{backup_job_name(db)}_daily",
            job_name=backup_job_name(db),
            cron_schedule=config.schedules.backup,
            execution_timezone=config.timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"Back up {db.name} at {config.schedules.backup} ({config.timezone}).",
        )
        for db in config.databases
    ]
