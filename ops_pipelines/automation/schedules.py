"""Schedules, in the config's time zone (Dagster's default would be UTC)."""

import dagster as dg

from ops_pipelines.automation.jobs import backup_job_name, restore_test_job_name
from ops_pipelines.config import DatabaseConfig, OpsConfig


def build(config: OpsConfig) -> list[dg.ScheduleDefinition]:
    return daily_backups(config) + [monthly_restore_test(config, db) for db in config.databases]


def daily_backups(config: OpsConfig) -> list[dg.ScheduleDefinition]:
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


def first_week_only(context: dg.ScheduleEvaluationContext) -> bool:
    """Cron ORs day-of-month with day-of-week, so "first Saturday" is every Saturday plus this guard."""
    return context.scheduled_execution_time.day <= 7


def monthly_restore_test(config: OpsConfig, db: DatabaseConfig) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{restore_test_job_name(db)}_monthly",
        job_name=restore_test_job_name(db),
        cron_schedule=config.schedules.maintenance_window,
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Restore test of {db.name} in the monthly maintenance window (first week only).",
    )
    def monthly(context: dg.ScheduleEvaluationContext):
        if not first_week_only(context):
            return dg.SkipReason(f"{context.scheduled_execution_time:%Y-%m-%d} is not in the first week of the month")
        return dg.RunRequest(run_key=f"monthly:{context.scheduled_execution_time:%Y-%m}")

    return monthly
