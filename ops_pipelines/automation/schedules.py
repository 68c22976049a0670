"""Schedules, in the config's time zone (Dagster's default would be UTC). Defaults follow the
runbooks: backup daily 02:00, vacuum daily 03:00, reindex Sunday 04:00, archival Monday 09:00,
capacity daily 01:30, and the monthly window (restore test, VACUUM FULL) on the first Saturday
02:00, the weekly report Friday 17:00. Each schedule runs one capability of one database (see
jobs.py), except the report's, which covers them all."""

import dagster as dg

from ops_pipelines.automation.jobs import REPORT_JOB, CapabilityRun
from ops_pipelines.config import OpsConfig
from ops_pipelines.registry import FIRST_WEEK


def build(config: OpsConfig, capabilities: dict[str, dict[str, CapabilityRun]]) -> list[dg.ScheduleDefinition]:
    """One schedule per capability and database, at the cron the registry names for it."""
    schedules = []
    for per_capability in capabilities.values():
        for capability in per_capability.values():
            if capability.spec.schedule == FIRST_WEEK:
                schedules.append(first_week(config, capability))
            elif (cron := capability.spec.cron(config)) is not None:
                schedules.append(every(config, capability, cron))
    schedules.append(weekly_report(config))
    return schedules


def weekly_report(config: OpsConfig) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="maintenance_report_weekly",
        job_name=REPORT_JOB,
        cron_schedule=config.schedules.report,
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"The maintenance report of every database at {config.schedules.report} ({config.timezone}).",
    )


def every(config: OpsConfig, capability: CapabilityRun, cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{capability.name}_{capability.db.name}_schedule",
        job_name=capability.job_name,
        cron_schedule=cron,
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{capability.name} of {capability.db.name} at {cron} ({config.timezone}).",
    )
    def scheduled(context: dg.ScheduleEvaluationContext):
        return capability.run_request(run_key=f"{capability.name}:{context.scheduled_execution_time:%Y-%m-%dT%H:%M}")

    return scheduled


def first_week_only(context: dg.ScheduleEvaluationContext) -> bool:
    """Cron ORs day-of-month with day-of-week, so "first Saturday" is every Saturday plus this guard."""
    return context.scheduled_execution_time.day <= 7


def first_week(config: OpsConfig, capability: CapabilityRun) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{capability.name}_{capability.db.name}_monthly",
        job_name=capability.job_name,
        cron_schedule=config.schedules.maintenance_window,
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{capability.name} of {capability.db.name} in the monthly window (first week of the month only).",
    )
    def monthly(context: dg.ScheduleEvaluationContext):
        if not first_week_only(context):
            return dg.SkipReason(f"{context.scheduled_execution_time:%Y-%m-%d} is not in the first week of the month")
        return capability.run_request(run_key=f"monthly:{context.scheduled_execution_time:%Y-%m}")

    return monthly
