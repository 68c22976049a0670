"""`health_probe_sensor`: the probe of every database every `schedules.health`, without runs.

A run per probe (288 a day per database) would swamp run storage, so the sensor probes itself, the
databases side by side, and records each check of `health` in Dagster's event log without a run
(`history.record_check_result`) only when its state (passed, warning, error) changes, and at least
hourly: the UI shows the current state and its history, and the check-alert sensor sees each
transition once. With a metrics textfile, it also rewrites `ops_pipelines_health.prom` beside it
with every check's state and the key figures. A tick never raises: what fails is logged and the
next tick tries again.
"""

import concurrent.futures
import json
import time
import uuid

import dagster as dg

from ops_pipelines.capability import CapabilityJob
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.health import Counters, Probe, probe
from ops_pipelines.core.prometheus import render_health
from ops_pipelines.core.verdict import Verdict
from ops_pipelines.files import atomic_write_text
from ops_pipelines.history import PROBE_ID_PREFIX, record_check_result
from ops_pipelines.redact import mask_secrets

HEALTH = dg.AssetKey("health")
RECORD_EVERY_SECONDS = 3600  # an unchanged state is recorded again after this long
MAX_PARALLEL = 16  # databases probed at once; each holds one connection for a fraction of a second
RECORD_BUDGET_SECONDS = 6.0  # of a tick, for writing check results; the rest waits for the next tick
TEXTFILE_NAME = "ops_pipelines_health.prom"


def build(config: OpsConfig, jobs: tuple[CapabilityJob, ...]) -> list[dg.SensorDefinition]:
    """`jobs`: the health capability's job; the sensor targets it (the asset's page lists the sensor)
    but never requests a run."""
    job = jobs[0]
    databases = job.fleet.names
    every = config.schedules.health
    watched = [db for db in config.databases if db.name in databases]

    @dg.sensor(
        name="health_probe_sensor",
        job_name=job.name,
        minimum_interval_seconds=max(30, round(every.seconds)),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Probes the health of each of {len(watched)} databases every {every} (side by side) and "
        "records each `health` check without a run when its state changes, and hourly.",
    )
    def health_probe(context: dg.SensorEvaluationContext):
        state = json.loads(context.cursor) if context.cursor else {}
        try:
            summary = probe_and_record(
                context.instance, config, watched, state, context.log, write=not is_dry_run(context)
            )
        except Exception as exc:  # noqa: BLE001 - a tick never raises; the cursor keeps what was recorded
            summary = f"tick failed: {type(exc).__name__}: {mask_secrets(str(exc))}"
            context.log.error(f"health probe {summary}")
        context.update_cursor(json.dumps(state))
        return dg.SkipReason(summary)

    return [health_probe]


def is_dry_run(context: dg.SensorEvaluationContext) -> bool:
    """True for `dagster sensor preview` and the UI's "Test sensor": they show what a tick would do
    and must write nothing (no check results, no textfile). Dagster 1.13 has no public flag for it.
    The daemon passes the tick's log key, [repository, sensor, tick id], naming a tick it has started
    in the instance's schedule storage; a preview or a test passes none, and the context then makes
    one up from the time ("20261204_111500"), which names no started tick of this sensor. A context
    built in code without a repository (`build_sensor_context`, as the tests tick) has no log key
    and is a real evaluation. `schedule_storage` and the tick's fields are Dagster internals, read
    here only because no public API tells a dry run apart."""
    key = context.log_key
    if not key:
        return False
    storage = context.instance.schedule_storage
    try:
        tick_id = int(key[-1]) if key[-1].isdigit() else None
        ticks = storage.get_ticks_by_ids([tick_id]) if storage is not None and tick_id is not None else []
    except Exception:  # noqa: BLE001 - unreadable tick storage: write nothing rather than guess
        return True
    return not any(t.instigator_name == key[1] and t.status.value == "STARTED" for t in ticks)


def probe_and_record(
    instance: dg.DagsterInstance, config: OpsConfig, databases: list, state: dict, log, *, write: bool = True
) -> str:
    """Probe `databases`; record what changed (with `write` false, only say what would be). `state`
    (the cursor) is updated in place: `recorded`: "db/check" -> [state, unix time recorded];
    `counters`: db -> the block counters."""
    recorded: dict[str, list] = state.setdefault("recorded", {})
    counters: dict[str, list] = state.setdefault("counters", {})
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(databases))) as pool:
        futures = {
            pool.submit(
                probe, db, config.backup_store.local_dir, Counters.from_list(counters.get(db.name)), log.warning
            ): db.name
            for db in databases
        }
        probes: list[Probe] = []
        for future in concurrent.futures.as_completed(futures):
            try:
                probes.append(future.result())
            except Exception as exc:  # noqa: BLE001 - one database's surprise must not stop the others
                name = futures[future]
                log.error(f"{name}: the probe failed: {type(exc).__name__}: {exc}")
                probes.append(Probe(name, {"reachable": Verdict.fail(f"probe failed: {exc}")}))
    now = time.time()
    changed: list[tuple[str, str, dg.AssetCheckEvaluation]] = []  # (state, "db/check", result)
    probe_id = f"{PROBE_ID_PREFIX}{uuid.uuid4().hex}"
    for result in sorted(probes, key=lambda p: p.database):
        if result.counters is not None:
            counters[result.database] = result.counters.to_list()
        for check, verdict in result.verdicts.items():
            if verdict is None:
                continue  # not judged (the server is down): its last state stands
            key, current = f"{result.database}/{check}", state_of(verdict)
            previous = recorded.get(key)
            if previous is not None and previous[0] == current and now - previous[1] < RECORD_EVERY_SECONDS:
                continue
            changed.append(
                (
                    current,
                    key,
                    dg.AssetCheckEvaluation(
                        asset_key=HEALTH,
                        check_name=check,
                        passed=verdict.passed,
                        severity=dg.AssetCheckSeverity.WARN if verdict.warning_only else dg.AssetCheckSeverity.ERROR,
                        description=verdict.description,
                        metadata=verdict.metadata,
                        partition=result.database,
                    ),
                )
            )
    # Each write costs the instance's storage about 15 ms, one after the other (they update one row):
    # a fleet's first tick (every check of every database) would outlast the tick. Failures first,
    # then what passes, until the budget is spent; the rest is recorded by the next ticks.
    changed.sort(key=lambda item: item[0] == "passed")
    deadline = time.monotonic() + RECORD_BUDGET_SECONDS
    written = 0
    if not write:
        failing = sorted(
            f"{p.database}/{check}" for p in probes for check, v in p.verdicts.items() if v is not None and not v.passed
        )
        return (
            f"dry run: probed {len(probes)} databases in {time.monotonic() - started:.1f} s; would record "
            f"{len(changed)} check results; wrote nothing; failing now: {', '.join(failing[:10]) or 'none'}"
            + (f" and {len(failing) - 10} more" if len(failing) > 10 else "")
        )
    for current, key, evaluation in changed:
        if time.monotonic() > deadline:
            break
        record_check_result(instance, evaluation, probe_id)
        recorded[key] = [current, now]
        written += 1
    postponed = len(changed) - written
    if config.metrics.textfile_path is not None:
        path = config.metrics.textfile_path.with_name(TEXTFILE_NAME)
        try:  # 0644: node_exporter reads it as its own user
            atomic_write_text(path, render_health(recorded, probes, now), mode=0o644)
        except OSError as exc:
            log.error(f"cannot write {path}: {exc.strerror or exc}")
    failing = sorted(key for key, (current, _) in recorded.items() if current != "passed")
    return (
        f"probed {len(probes)} databases in {time.monotonic() - started:.1f} s; recorded {written} check results"
        + (f" ({postponed} wait for the next tick)" if postponed else "")
        + "; "
        f"failing: {', '.join(failing[:10]) or 'none'}"
        + (f" and {len(failing) - 10} more" if len(failing) > 10 else "")
    )


def state_of(verdict: Verdict) -> str:
    if verdict.passed:
        return "passed"
    return "warning" if verdict.warning_only else "error"
