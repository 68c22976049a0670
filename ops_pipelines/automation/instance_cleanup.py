"""Run retention for the Dagster instance itself: Dagster OSS keeps runs (and their event logs)
until someone deletes them, so a weekly job deletes finished runs older than `keep_days`.
Backup and restore history that matters lives in the backup store's manifests and markers."""

import datetime as dt

import dagster as dg

from ops_pipelines.history import FINISHED_RUN_STATUSES


class CleanupConfig(dg.Config):
    keep_days: int = 180
    batch: int = 500  # runs deleted per query, so one tick never holds the instance database long


@dg.op(description="Deletes finished runs older than keep_days, with their event logs.")
def delete_old_runs(context: dg.OpExecutionContext, config: CleanupConfig) -> None:
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=config.keep_days)
    deleted = 0
    while True:
        records = context.instance.get_run_records(
            filters=dg.RunsFilter(statuses=FINISHED_RUN_STATUSES, created_before=cutoff), limit=config.batch
        )
        if not records:
            break
        for record in records:
            context.instance.delete_run(record.dagster_run.run_id)
        deleted += len(records)
    context.log.info(f"deleted {deleted} finished runs created before {cutoff:%Y-%m-%d}")


@dg.job(description="Instance housekeeping: delete finished runs older than keep_days (default 180).")
def instance_cleanup():
    delete_old_runs()


def build(timezone: str) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    schedule = dg.ScheduleDefinition(
        name="instance_cleanup_weekly",
        job=instance_cleanup,
        cron_schedule="30 5 * * 0",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    return instance_cleanup, schedule
