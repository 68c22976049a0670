"""Reading what Dagster recorded, for the alerts, the metrics textfile, the weekly report and cleanup."""

import dagster as dg

FINISHED_RUN_STATUSES = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def check_evaluation(record) -> dg.AssetCheckEvaluation | None:
    """The evaluation of an asset-check execution record; None while it runs or when it raised."""
    if record is None or record.event is None or record.event.dagster_event is None:
        return None
    data = record.event.dagster_event.event_specific_data
    return data if isinstance(data, dg.AssetCheckEvaluation) else None
