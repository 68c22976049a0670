"""Failure alerts: a sensor for failed runs and one for failed checks, to each channel configured —
the webhook (`alerts.webhook_url`, Slack-compatible or generic JSON) and e-mail (`alerts.email_to`):
one message per failed run; for checks, one per transition — a check that starts failing, and a
"resolved" message when it passes again; more than `alerts.digest_after` at once, one digest.

Each sensor keeps in its cursor where it stopped reading and the alerts not yet delivered: when the
receiver is down, alerts wait for the next tick instead of being lost, and a tick never raises.
On its first tick a sensor only marks the present as read: turning alerts on does not replay
months of old failures.
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from ops_pipelines.adapters.mail import MailUndelivered, send
from ops_pipelines.adapters.notify import (
    Alert,
    AlertUndelivered,
    alert_mail,
    digest_mail,
    digest_payload,
    payload,
    post,
)
from ops_pipelines.automation.report import REPORT_KEY
from ops_pipelines.config import OpsConfig
from ops_pipelines.history import (
    PROBE_ID_PREFIX,
    check_evaluation,
    check_history,
    check_statuses,
    database_of_run,
    one_line,
    run_failure,
)
from ops_pipelines.localtime import local_iso

RUNS_PER_TICK = 100
LATE_SECONDS = 120  # how much later than it was made a check result may be stored
HISTORY_PER_TICK = 20  # executions of one check on one database read per tick: more than happen between ticks
TICK_BUDGET_SECONDS = 40  # sensors time out at 60 s; what is left waits for the next tick
MAX_PENDING = 500  # alerts kept while the receiver is down; the oldest are dropped past this (logged)


def build(config: OpsConfig, asset_graph) -> list[dg.SensorDefinition]:
    if not channels(config):
        return []
    step_assets = {key.to_python_identifier(): key for key in [*asset_graph.get_all_asset_keys(), REPORT_KEY]}
    check_keys = sorted(asset_graph.asset_check_keys, key=lambda k: k.to_user_string())
    return [run_failure_alert_sensor(config, step_assets), check_failure_alert_sensor(config, check_keys)]


def run_failure_alert_sensor(config: OpsConfig, step_assets: dict[str, dg.AssetKey]) -> dg.SensorDefinition:
    @dg.sensor(
        name="run_failure_alert_sensor",
        minimum_interval_seconds=max(1, round(config.alerts.every.seconds)),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends one alert (webhook, e-mail) for each failed run of this code location: database, asset, "
        "cause, run link.",
    )
    def run_failure_alerts(context: dg.SensorEvaluationContext):
        state = json.loads(context.cursor) if context.cursor else {}
        new: list[Alert] = []
        if "after" not in state:
            newest = context.instance.fetch_run_status_changes(dg.DagsterEventType.RUN_FAILURE, limit=1).records
            state["after"] = newest[0].storage_id if newest else 0
            context.update_cursor(json.dumps(state))
            return dg.SkipReason("started: runs failing from now on will be alerted")
        records = context.instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(
                event_type=dg.DagsterEventType.RUN_FAILURE, after_storage_id=state["after"]
            ),
            limit=RUNS_PER_TICK,
            ascending=True,
        ).records
        run_ids = list({record.event_log_entry.run_id for record in records})
        runs = (
            {
                r.dagster_run.run_id: r.dagster_run
                for r in context.instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
            }
            if run_ids
            else {}
        )
        for record in records:
            state["after"] = record.storage_id
            run = runs.get(record.event_log_entry.run_id)
            if run is not None and _in_this_location(run, context):
                new.append(_run_alert(context.instance, run, record.event_log_entry, step_assets, config))
        return _deliver(context, state, new, config)

    return run_failure_alerts


def check_failure_alert_sensor(config: OpsConfig, check_keys: list[dg.AssetCheckKey]) -> dg.SensorDefinition:
    least = config.alerts.check_severity

    @dg.sensor(
        name="check_failure_alert_sensor",
        minimum_interval_seconds=max(1, round(config.alerts.every.seconds)),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Sends an alert (webhook, e-mail) when an asset check starts failing (severity {least} and "
        "above) and a 'resolved' one when it passes again, naming the database; the same failure is alerted once.",
    )
    def check_failure_alerts(context: dg.SensorEvaluationContext):
        state = json.loads(context.cursor) if context.cursor else {}
        new: list[Alert] = []
        # `after`: the storage id of the newest check event read, for every check and database: the
        # (check, database) pairs with a newer event are what changed (one query per check).
        # `since`: when the last tick read; a result is new when it was evaluated after that (less
        # LATE_SECONDS, for results stored a little after they were made), unless `alerted` holds
        # it already (execution ids alerted within that margin).
        first_tick = "after" not in state
        started = time.time()
        since = state.get("since", started) - LATE_SECONDS
        alerted: dict[str, float] = state.get("alerted", {})
        changed = check_statuses(context.instance, check_keys, after=state.get("after"))
        state["after"] = max([state.get("after", 0), *(change.storage_id for change in changed)])
        state["since"] = started
        if first_tick:
            context.update_cursor(json.dumps(state))
            return dg.SkipReason("started: checks failing from now on will be alerted")
        for change in sorted(changed, key=lambda c: c.storage_id):
            # Every execution of this pair since the last read, not only the newest: a check may
            # fail, pass and fail again between two ticks. Alerts go out on transitions only: a
            # failure after a pass (or a change of severity), and "resolved" on a pass after a
            # failure; the same failure again is not alerted again.
            history = check_history(context.instance, change.key, change.partition, limit=HISTORY_PER_TICK + 1)
            before = None  # the state of the execution before the one looked at
            for record in reversed(history):
                evaluation = check_evaluation(record)
                if evaluation is None:
                    continue
                now_state = _state(evaluation)
                previous, before = before, now_state
                evaluated_at = record.event.timestamp if record.event is not None else 0.0
                if evaluated_at <= since or str(record.id) in alerted or now_state == previous:
                    continue
                if now_state == "passed" and previous is None:
                    continue  # a pass with nothing before it in sight resolves nothing
                alerted[str(record.id)] = evaluated_at
                if now_state == "passed":
                    if previous == "warning" and least == "error":
                        continue  # its failure was never alerted
                    kind, cause = "check_resolved", evaluation.description or "passes"
                    severity = "warning" if previous == "warning" else "error"
                else:
                    if now_state == "warning" and least == "error":
                        continue
                    kind, severity = "check_failure", ("warning" if now_state == "warning" else "error")
                    cause = evaluation.description or "the check failed without a description"
                new.append(
                    Alert(
                        kind=kind,
                        cause=one_line(cause),
                        run_id=record.run_id,
                        occurred_at=local_iso(record.create_timestamp, config.timezone),
                        database=change.partition,
                        asset=change.key.asset_key.to_user_string(),
                        check=change.key.name,
                        severity=severity,
                        run_url=_run_url(config, record.run_id) if _from_a_run(record.run_id) else None,
                    )
                )
        state["alerted"] = {key: at for key, at in alerted.items() if at > started - 2 * LATE_SECONDS}
        return _deliver(context, state, new, config)

    return check_failure_alerts


@dataclass(frozen=True)
class Channel:
    """One way alerts reach people: the webhook, or e-mail. Each keeps its own undelivered alerts."""

    key: str  # where its undelivered alerts wait in the sensor's cursor
    verb: str  # what the tick's summary says it did: "posted", "mailed"
    one: Callable[[Alert], None]
    digest: Callable[[list[Alert]], None]


def channels(config: OpsConfig) -> list[Channel]:
    found = []
    settings = config.alerts
    if settings.webhook_url is not None:
        url, timeout = settings.webhook_url.get_secret_value(), settings.timeout.seconds

        def post_one(alert: Alert) -> None:
            post(url, payload(alert, settings.format), attempts=settings.attempts, timeout=timeout)

        def post_digest(alerts: list[Alert]) -> None:
            post(url, digest_payload(alerts, settings.format), attempts=settings.attempts, timeout=timeout)

        found.append(Channel("pending", "posted", post_one, post_digest))
    email = config.email
    if settings.email_to and email is not None:
        to = settings.email_to
        found.append(
            Channel(
                "pending_email",
                "mailed",
                lambda alert: send(email, alert_mail(alert, to)),
                lambda alerts: send(email, digest_mail(alerts, to)),
            )
        )
    return found


def _deliver(context: dg.SensorEvaluationContext, state: dict, new: list[Alert], config: OpsConfig) -> dg.SkipReason:
    """Each channel delivers its waiting alerts and the new ones; what it cannot waits in the cursor."""
    deadline = time.monotonic() + TICK_BUDGET_SECONDS
    summaries = []
    for channel in channels(config):
        pending = [Alert.from_dict(item) for item in state.get(channel.key, [])] + new
        pending, summary = _deliver_on(context, channel, pending, config.alerts.digest_after, deadline)
        state[channel.key] = [alert.to_dict() for alert in pending]
        summaries.append(summary)
    context.update_cursor(json.dumps(state))
    return dg.SkipReason("; ".join(summaries) or "no alert channel is configured")


def _deliver_on(
    context: dg.SensorEvaluationContext, channel: Channel, pending: list[Alert], digest_after: int, deadline: float
) -> tuple[list[Alert], str]:
    """Deliver the waiting alerts oldest first; stop at the first that cannot be delivered (the receiver
    is down: the rest would wait for timeouts too) and keep it and the rest for the next tick."""
    sent, dropped, problem = 0, 0, None
    if len(pending) > digest_after:
        # A storm (a server down fails many checks at once): one digest instead of a message each.
        try:
            channel.digest(pending)
            sent, pending = len(pending), []
            context.log.info(f"{sent} alerts {channel.verb} as one digest")
        except (AlertUndelivered, MailUndelivered) as exc:
            if exc.permanent:
                context.log.error(f"a digest of {len(pending)} alerts dropped, the receiver refuses it: {exc}")
                dropped, pending = len(pending), []
            else:
                problem = str(exc)
    while pending and problem is None:
        if time.monotonic() > deadline:
            problem = f"this tick's {TICK_BUDGET_SECONDS} s are spent"
            break
        alert = pending[0]
        try:
            channel.one(alert)
            sent += 1
        except (AlertUndelivered, MailUndelivered) as exc:
            if not exc.permanent:
                problem = str(exc)
                break
            context.log.error(f"alert dropped, the receiver refuses it: {alert.title}: {exc}")
            dropped += 1
        pending.pop(0)
    if len(pending) > MAX_PENDING:
        lost = pending[: len(pending) - MAX_PENDING]
        pending = pending[len(lost) :]
        context.log.error(
            f"{len(lost)} undelivered alerts dropped (more than {MAX_PENDING} waiting), oldest: {lost[0].title}"
        )
    if problem:
        context.log.warning(f"{len(pending)} alerts wait for the next tick: {problem}")
    summary = f"{sent} alerts {channel.verb}, {dropped} refused, {len(pending)} waiting"
    return pending, summary + (f": {problem}" if problem else "")


def _run_alert(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    failure: dg.EventLogEntry,
    step_assets: dict[str, dg.AssetKey],
    config: OpsConfig,
) -> Alert:
    why = run_failure(instance, run.run_id)
    asset = step_assets.get(why.step_key) if why.step_key else None
    database = database_of_run(run)
    return Alert(
        kind="run_failure",
        cause=why.cause,
        run_id=run.run_id,
        occurred_at=local_iso(failure.timestamp, config.timezone),
        database=database,
        asset=asset.to_user_string() if asset is not None else None,
        job=run.job_name,
        run_url=_run_url(config, run.run_id),
    )


def _in_this_location(run: dg.DagsterRun, context: dg.SensorEvaluationContext) -> bool:
    # As Dagster's own run-status sensors decide: runs without an origin (tests) match.
    origin = run.remote_job_origin
    run_location = origin.repository_origin.code_location_origin.location_name if origin else None
    sensor_location = context.code_location_origin.location_name if context.code_location_origin else None
    return run_location == sensor_location


def _from_a_run(run_id: str) -> bool:
    """False for check results recorded without a run (the health probe's, or Dagster's runless)."""
    return bool(run_id) and not run_id.startswith(PROBE_ID_PREFIX)


def _state(evaluation: dg.AssetCheckEvaluation) -> str:
    if evaluation.passed:
        return "passed"
    return "warning" if evaluation.severity == dg.AssetCheckSeverity.WARN else "error"


def _run_url(config: OpsConfig, run_id: str) -> str | None:
    base = config.alerts.ui_base_url
    return f"{base.rstrip('/')}/runs/{run_id}" if base else None
