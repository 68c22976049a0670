"""Reading what Dagster recorded, for the alerts, the metrics textfile, the weekly report and cleanup;
and recording the health probe's check results without a run."""

from dataclasses import dataclass

import dagster as dg

# Private, and the only private names besides cron.py's: the event-log storage's check history takes
# this filter for one partition (database), and its per-partition check status comes as this enum;
# Dagster exports neither. Without them, one database's check history would mean reading every
# database's. Re-check both when upgrading Dagster (pinned in pyproject.toml; the report, alert and
# textfile tests read check history through them).
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from ops_pipelines.records.backup import OffsiteCopyRecord

FINISHED_RUN_STATUSES = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


DATABASE_TAG = "ops_pipelines/database"  # on every run our schedules and sensors request
PARTITION_TAG = "dagster/partition"  # on every run of one partition, however launched (UI, CLI, backfill)


def database_of_run(run: dg.DagsterRun) -> str | None:
    """The database a run worked on: its partition, or the tag our schedules and sensors set."""
    return run.tags.get(PARTITION_TAG) or run.tags.get(DATABASE_TAG)


def checks_with_partitions(asset_graph) -> dict[dg.AssetCheckKey, tuple[str, ...]]:
    """Every check of the graph with the databases (partitions) it is evaluated for."""
    checks = {}
    for key in sorted(asset_graph.asset_check_keys, key=lambda k: k.to_user_string()):
        partitions = asset_graph.get(key.asset_key).partitions_def
        checks[key] = tuple(partitions.get_partition_keys()) if partitions is not None else ()
    return checks


def latest_materialization(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str):
    """The newest materialization record of one partition (database) of an asset, or None."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return records[0] if records else None


def latest_materializations(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, dg.EventLogRecord]:
    """The newest materialization record of every partition of an asset, in two queries."""
    newest = instance.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_MATERIALIZATION)
    if not newest:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, storage_ids=list(newest.values())), limit=len(newest)
    ).records
    return {record.partition_key: record for record in records if record.partition_key is not None}


def check_statuses(instance: dg.DagsterInstance, keys: list[dg.AssetCheckKey], after: int | None = None) -> list:
    """Per (check, partition), its latest execution's status (`failed`, `passed` or `running`) and the
    storage id of its newest event: one query per check, for every database. `after`: only those with
    an event newer than that storage id."""
    return [
        CheckStatus(
            info.check_key,
            info.partition_key,
            _STATUS.get(info.latest_execution_status, "running"),
            info.latest_check_event_storage_id,
        )
        for info in instance.event_log_storage.get_asset_check_partition_info(keys, after_storage_id=after)
    ]


_STATUS = {
    AssetCheckExecutionRecordStatus.FAILED: "failed",
    AssetCheckExecutionRecordStatus.SUCCEEDED: "passed",
    AssetCheckExecutionRecordStatus.PLANNED: "running",
}


@dataclass(frozen=True)
class CheckStatus:
    key: dg.AssetCheckKey
    partition: str | None
    status: str
    storage_id: int


def check_history(instance: dg.DagsterInstance, key: dg.AssetCheckKey, partition: str | None, limit: int) -> list:
    """Executions of one check on one partition (database), newest first."""
    return list(
        instance.event_log_storage.get_asset_check_execution_history(
            key, limit=limit, partition_filter=PartitionKeyFilter(key=partition) if partition else None
        )
    )


@dataclass(frozen=True)
class FailingCheck:
    key: dg.AssetCheckKey
    evaluation: dg.AssetCheckEvaluation
    run_id: str

    @property
    def severity(self) -> str:
        return "warning" if self.evaluation.severity == dg.AssetCheckSeverity.WARN else "error"


def failing_checks(instance: dg.DagsterInstance, keys: list[dg.AssetCheckKey]) -> dict[str, list[FailingCheck]]:
    """Per database, the checks whose newest result failed: one status query per check for the whole
    fleet, then one read per failing (check, database) — few."""
    found: dict[str, list[FailingCheck]] = {}
    for status in check_statuses(instance, keys) if keys else []:
        if status.status != "failed" or status.partition is None:
            continue
        latest = check_history(instance, status.key, status.partition, limit=1)
        evaluation = check_evaluation(latest[0]) if latest else None
        if evaluation is not None and not evaluation.passed:
            found.setdefault(status.partition, []).append(FailingCheck(status.key, evaluation, latest[0].run_id))
    return found


def materialization_metadata(event) -> dict:
    """The metadata of a materialization (an event log entry or record), {} when there is none."""
    materialization = event.asset_materialization if event is not None else None
    return dict(materialization.metadata) if materialization is not None else {}


def check_evaluation(record) -> dg.AssetCheckEvaluation | None:
    """The evaluation of an asset-check execution record; None while it runs or when it raised."""
    if record is None or record.event is None or record.event.dagster_event is None:
        return None
    data = record.event.dagster_event.event_specific_data
    return data if isinstance(data, dg.AssetCheckEvaluation) else None


@dataclass(frozen=True)
class RunFailure:
    step_key: str | None  # the first failed step (for an asset, its key as a Python identifier)
    cause: str  # one line


def run_failure(instance: dg.DagsterInstance, run_id: str) -> RunFailure:
    """Why a failed run failed: the innermost error of its first failed step, or the run's own
    failure message when no step failed (the worker crashed, was killed, or could not start)."""
    events = instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE})
    steps = [e for e in events if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.STEP_FAILURE]
    failure = steps[0].dagster_event.step_failure_data if steps and steps[0].dagster_event else None
    if failure is not None and failure.error is not None:
        error = failure.error
        while error.cause is not None:
            error = error.cause
        cause = one_line(error.message)
        if len(steps) > 1:
            cause += f" (and {len(steps) - 1} more failed steps: {', '.join(e.step_key or '?' for e in steps[1:4])})"
        return RunFailure(steps[0].step_key, cause)
    messages = [e.message or (e.dagster_event.message if e.dagster_event else "") for e in events]
    return RunFailure(None, one_line(next((m for m in messages if m), "the run failed")))


def one_line(text: str, limit: int = 500) -> str:
    line = " ".join(text.strip().split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


PROBE_ID_PREFIX = "health-probe-"  # the run id of check results the health sensor records: no run has it


def record_check_result(instance: dg.DagsterInstance, evaluation: dg.AssetCheckEvaluation, probe_id: str) -> None:
    """Store one check result without a run. This is what `instance.report_runless_asset_event` does,
    except the event's run id: Dagster 1.13 stores every runless check result under the run id "",
    and its unique index on (check, run id, partition) then refuses a second result for the same
    partitioned check (sqlite and postgres alike). Each probe tick's results carry the tick's own id
    instead, `health-probe-<hex>`, which names no run (the alert sensor knows the prefix); the storage
    reads them as it reads runless results."""
    instance.report_dagster_event(
        dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.ASSET_CHECK_EVALUATION.value,
            event_specific_data=evaluation,
            job_name="",
        ),
        run_id=probe_id,
    )


OFFSITE_COPY = dg.AssetKey("offsite_copy")


def recorded_copies(instance: dg.DagsterInstance, database: str, limit: int = 1000) -> dict[str, str]:
    """Backup stamp -> sha256 of every off-site copy of `database` this instance recorded (newest
    `limit`); the sha256 is empty for copies recorded before it was kept."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=OFFSITE_COPY, asset_partitions=[database]), limit=limit
    ).records
    copies: dict[str, str] = {}
    for record in records:
        copy = OffsiteCopyRecord.from_metadata(materialization_metadata(record))
        if copy is not None:
            copies.setdefault(copy.backup, copy.sha256)
    return copies


def last_check_failed(instance: dg.DagsterInstance, key: dg.AssetCheckKey, partition: str) -> bool:
    """Whether the newest evaluation of `key` on `partition` failed (False when it never ran)."""
    for record in check_history(instance, key, partition, limit=1):
        evaluation = check_evaluation(record)
        return evaluation is not None and not evaluation.passed
    return False
