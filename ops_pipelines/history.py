"""Reading what Dagster recorded, for the alerts, the metrics textfile, the weekly report and cleanup."""

from dataclasses import dataclass

import dagster as dg

FINISHED_RUN_STATUSES = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def checks_by_database(asset_graph) -> dict[str, list[dg.AssetCheckKey]]:
    """Every check key of the graph, grouped by the database its asset key starts with."""
    grouped: dict[str, list[dg.AssetCheckKey]] = {}
    for key in sorted(asset_graph.asset_check_keys, key=lambda k: k.to_user_string()):
        grouped.setdefault(key.asset_key.path[0], []).append(key)
    return grouped


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
