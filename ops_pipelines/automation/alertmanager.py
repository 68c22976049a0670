"""`alertmanager_sensor`: failing checks and failed runs, posted to Prometheus Alertmanager
(`alerts.alertmanager_url`, its `/api/v2/alerts`), for shops that route, group, inhibit and silence
there.

Alertmanager expects an alert to be posted again while it lasts: each tick posts every failing
check (one query per check for the whole fleet) with `endsAt` a few ticks ahead, so an alert ends
by itself if this sensor stops; a check that passes again is posted once more with `endsAt` now
(resolved). A failed run is posted once, ending an hour later. The cursor keeps the alerts still
firing and the resolutions not yet delivered: a receiver that is down never fails a tick, and
nothing is lost. The URL may carry credentials: it is never logged.
"""

import datetime as dt
import json
import time

import dagster as dg

from ops_pipelines.adapters.notify import AlertUndelivered, post
from ops_pipelines.config import OpsConfig
from ops_pipelines.history import (
    PROBE_ID_PREFIX,
    database_of_run,
    failing_checks,
    one_line,
    run_failure,
)

RUN_ALERT_SECONDS = 3600  # a failed run is an event: it stays in Alertmanager this long
RUNS_PER_TICK = 100


def build(config: OpsConfig, asset_graph) -> list[dg.SensorDefinition]:
    if config.alerts.alertmanager_url is None:
        return []
    check_keys = sorted(asset_graph.asset_check_keys, key=lambda k: k.to_user_string())
    every = max(1, round(config.alerts.every.seconds))
    url = config.alerts.alertmanager_url.get_secret_value().rstrip("/") + "/api/v2/alerts"

    @dg.sensor(
        name="alertmanager_sensor",
        minimum_interval_seconds=every,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts every failing asset check (and each failed run) to Alertmanager's /api/v2/alerts, again "
        "each tick while it fails, and with its end when it passes.",
    )
    def alertmanager(context: dg.SensorEvaluationContext):
        state = json.loads(context.cursor) if context.cursor else {}
        now = time.time()
        firing: dict[str, dict] = {}
        for database, failing in failing_checks(context.instance, check_keys).items():
            for check in failing:
                severity = "warning" if check.evaluation.severity == dg.AssetCheckSeverity.WARN else "error"
                if severity == "warning" and config.alerts.check_severity == "error":
                    continue
                asset = check.key.asset_key.to_user_string()
                firing[f"{database}/{asset}/{check.key.name}"] = _alert(
                    config,
                    {"alertname": check.key.name, "database": database, "severity": severity, "asset": asset},
                    check.evaluation.description or "the check failed",
                    check.run_id,
                )
        # checks that fired last tick and pass now: resolved (kept until delivered)
        resolving: dict[str, dict] = state.get("resolving", {})
        for key, alert in state.get("firing", {}).items():
            if key not in firing:
                resolving[key] = {**alert, "endsAt": _iso(now)}
        runs, after = _failed_runs(context, config, state.get("runs_after"), now)
        ends = _iso(now + max(300, 4 * every))  # posted again each tick until then
        body = [{**a, "endsAt": ends} for a in firing.values()] + list(resolving.values()) + runs
        delivered, problem = True, None
        if body:
            try:
                post(
                    url,
                    body,
                    attempts=config.alerts.attempts,
                    timeout=config.alerts.timeout.seconds,
                    receiver="Alertmanager",
                )
            except AlertUndelivered as exc:
                delivered, problem = False, str(exc)
                context.log.warning(f"Alertmanager did not take {len(body)} alerts; next tick again: {exc}")
        state.update(
            firing={k: {key: v for key, v in a.items() if key != "endsAt"} for k, a in firing.items()},
            resolving={} if delivered else resolving,
            runs_after=after if delivered else state.get("runs_after", after),
        )
        context.update_cursor(json.dumps(state))
        return dg.SkipReason(
            f"{len(firing)} firing, {len(resolving)} resolved, {len(runs)} failed runs"
            + (" posted" if delivered else f" waiting: {problem}")
        )

    return [alertmanager]


def _alert(config: OpsConfig, labels: dict[str, str], cause: str, run_id: str) -> dict:
    annotations = {"summary": one_line(cause)}
    base = config.alerts.ui_base_url
    if base and run_id and not run_id.startswith(PROBE_ID_PREFIX):
        annotations["run_url"] = f"{base.rstrip('/')}/runs/{run_id}"
    alert: dict[str, object] = {"labels": {k: v for k, v in labels.items() if v}, "annotations": annotations}
    if "run_url" in annotations:
        alert["generatorURL"] = annotations["run_url"]
    return alert


def _failed_runs(context: dg.SensorEvaluationContext, config: OpsConfig, after: int | None, now: float):
    """Failed runs since the last tick (on the first, only where to start), as alerts ending in an hour."""
    instance = context.instance
    if after is None:
        newest = instance.fetch_run_status_changes(dg.DagsterEventType.RUN_FAILURE, limit=1).records
        return [], newest[0].storage_id if newest else 0
    records = instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(event_type=dg.DagsterEventType.RUN_FAILURE, after_storage_id=after),
        limit=RUNS_PER_TICK,
        ascending=True,
    ).records
    alerts = []
    for record in records:
        run = instance.get_run_by_id(record.event_log_entry.run_id)
        if run is None:
            continue
        why = run_failure(instance, run.run_id)
        failed_at = record.event_log_entry.timestamp
        alert = _alert(
            config,
            {
                "alertname": "run_failure",
                "database": database_of_run(run) or "",
                "severity": "error",
                "asset": run.tags.get("ops_pipelines/capability", ""),
                "job": run.job_name,
            },
            why.cause,
            run.run_id,
        )
        alerts.append({**alert, "startsAt": _iso(failed_at), "endsAt": _iso(failed_at + RUN_ALERT_SECONDS)})
    return alerts, records[-1].storage_id if records else after


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat().replace("+00:00", "Z")
