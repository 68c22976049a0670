"""Schedules, in the config's time zone (Dagster's default would be UTC). Defaults follow the
runbooks: backup daily 02:00, vacuum daily 03:00, reindex Sunday 04:00, archival Monday 09:00, and the monthly window
(restore test, VACUUM FULL) on the first Saturday 02:00."""

import dagster as dg

from ops_pipelines.automation.jobs import (
    archive_job_name,
    backup_job_name,
    capacity_job_name,
    has_window_work,
    reindex_job_name,
    restore_test_job_name,
    vacuum_job_name,
    window_job_name,
)
from ops_pipelines.config import OpsConfig


def build(config: OpsConfig) -> list[dg.ScheduleDefinition]:
    schedules = []
    for db in config.databases:
        for job_name, cron, what in (
            (backup_job_name(db), config.schedules.backup, "Back up"),
            (vacuum_job_name(db), config.schedules.vacuum, "Vacuum/analyze"),
            (reindex_job_name(db), config.schedules.reindex, "Reindex"),
        ):
            schedules.append(every(config, job_name, cron, f"{what} {db.name} at {cron} ({config.timezone})."))
        if config.metrics.dsn:
            cron = config.schedules.capacity_sample
            schedules.append(every(config, capacity_job_name(db), cron, f"Capacity sample and forecast of {db.name} at {cron}."))
        if db.archive:
            cron = config.schedules.archive
            schedules.append(every(config, archive_job_name(db), cron, f"Archive old rows of {db.name} at {cron} ({config.timezone})."))
        schedules.append(first_week(config, restore_test_job_name(db), f"Restore test of {db.name} in the monthly window."))
        if has_window_work(db):
            schedules.append(first_week(config, window_job_name(db), f"VACUUM FULL / full reindex of {db.name} in the monthly window."))
    return schedules


def every(config: OpsConfig, job_name: str, cron: str, description: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=f"{job_name}_schedule",
        job_name=job_name,
        cron_schedule=cron,
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )


def first_week_only(context: dg.ScheduleEvaluationContext) -> bool:
    """Cron ORs day-of-month with day-of-week, so "first Saturday" is every Saturday plus this guard."""
    return context.scheduled_execution_time.day <= 7


def first_week(config: OpsConfig, job_name: str, description: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{job_name}_monthly",
        job_name=job_name,
        cron_schedule=config.schedules.maintenance_window,
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description + " Fires on the schedule's days in the first week of the month only.",
    )
    def monthly(context: dg.ScheduleEvaluationContext):
        if not first_week_only(context):
            return dg.SkipReason(f"{context.scheduled_execution_time:%Y-%m-%d} is not in the first week of the month")
        return dg.RunRequest(run_key=f"monthly:{context.scheduled_execution_time:%Y-%m}")

    return monthly
