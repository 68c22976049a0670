"""Schedules, in the config's time zone (Dagster's default would be UTC). Defaults follow the
runbooks: backup daily 02:00, vacuum daily 03:00, reindex Sunday 04:00, archival Monday 09:00,
capacity daily 01:30, and the monthly window (restore test, VACUUM FULL) on the first Saturday
02:00, the weekly report Friday 17:00. Each schedule targets one capability's job and requests a
run per database (partition); the run queue runs one run per database at a time."""

import dagster as dg

from ops_pipelines.automation.jobs import REPORT_JOB
from ops_pipelines.capability import FIRST_WEEK, CapabilityJob
from ops_pipelines.config import OpsConfig


def build(config: OpsConfig, jobs: list[CapabilityJob]) -> list[dg.ScheduleDefinition]:
    """One schedule per capability job, at the cron the registry names for it."""
    schedules = []
    for job in jobs:
        if job.spec.schedule == FIRST_WEEK:
            schedules.append(first_week(config, job))
        elif (cron := job.spec.cron(config)) is not None:
            schedules.append(every(config, job, cron))
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


def every(config: OpsConfig, job: CapabilityJob, cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{job.label}_schedule",
        job_name=job.name,
        cron_schedule=cron,
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{job.capability} ({', '.join(job.assets)}) of each of {len(job.fleet.names)} databases at "
        f"{cron} ({config.timezone}): a run per database.",
    )
    def scheduled(context: dg.ScheduleEvaluationContext):
        at = f"{context.scheduled_execution_time:%Y-%m-%dT%H:%M}"
        return [job.run_request(database, run_key=f"{job.name}:{database}:{at}") for database in job.fleet.names]

    return scheduled


def first_week_only(context: dg.ScheduleEvaluationContext) -> bool:
    """Cron ORs day-of-month with day-of-week, so "first Saturday" is every Saturday plus this guard."""
    return context.scheduled_execution_time.day <= 7


def first_week(config: OpsConfig, job: CapabilityJob) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{job.label}_monthly",
        job_name=job.name,
        cron_schedule=config.schedules.maintenance_window,
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{job.capability} of each of {len(job.fleet.names)} databases in the monthly window (first "
        "week of the month only): a run per database.",
    )
    def monthly(context: dg.ScheduleEvaluationContext):
        if not first_week_only(context):
            return dg.SkipReason(f"{context.scheduled_execution_time:%Y-%m-%d} is not in the first week of the month")
        month = f"{context.scheduled_execution_time:%Y-%m}"
        return [job.run_request(database, run_key=f"{job.name}:{database}:{month}") for database in job.fleet.names]

    return monthly
