"""`health` (partitioned by database): the live probe, one check per thing a runbook looks at each
morning. `health_probe_sensor` runs the same probe every `schedules.health` and records the checks
without a run (sensors.py beside it); materializing the asset runs it once, from the UI or the CLI.
"""

from collections.abc import Iterator

import dagster as dg

from ops_pipelines.capabilities.common import check_result, fleet_asset, fleet_check_spec
from ops_pipelines.capability import Capability, Fleets
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.health import CHECKS, DESCRIPTIONS, Counters, probe
from ops_pipelines.history import check_evaluation, check_history

HEALTH = dg.AssetKey("health")


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    fleet = fleets["health"]
    backup_dir = config.backup_store.local_dir

    @fleet_asset(
        capability,
        "health",
        fleet,
        check_specs=[fleet_check_spec("health", name, fleet, description=DESCRIPTIONS[name]) for name in CHECKS],
        description="The live health probe: reachable, connections, long and blocked sessions, sequences, "
        "wraparound, replication, prepared transactions, cache hits, backup and data volumes. "
        f"health_probe_sensor runs it every {config.schedules.health} and records each check when its state "
        "changes (and hourly), without a run; materialize to probe now.",
    )
    def health(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        db = fleet.database(context.partition_key)
        result = probe(db, backup_dir, previous_counters(context.instance, db.name), log=context.log.warning)
        reachable = result.verdicts["reachable"]
        if reachable is None or not reachable.passed:  # the other checks need the server: the run fails
            if reachable is not None:
                yield check_result(reachable, "reachable")
            raise dg.Failure(f"{db.name}: {reachable.description if reachable else 'not probed'}")
        verdicts = {name: verdict for name, verdict in result.verdicts.items() if verdict is not None}
        for name, verdict in verdicts.items():
            yield check_result(verdict, name)
        failing = [name for name, verdict in verdicts.items() if not verdict.passed]
        context.log.info(f"{db.name}: probed in {result.seconds * 1000:.0f} ms; failing: {failing or 'none'}")
        yield dg.MaterializeResult(
            metadata={
                "failing": dg.MetadataValue.text(", ".join(failing) or "none"),
                "probe_ms": dg.MetadataValue.float(round(result.seconds * 1000, 1)),
                **{
                    name: dg.MetadataValue.float(round(float(value), 4))
                    for name, value in sorted(result.figures.items())
                },
                **({"terminated": dg.MetadataValue.text("; ".join(result.terminated))} if result.terminated else {}),
            }
        )

    return dg.Definitions(assets=[health])


def previous_counters(instance: dg.DagsterInstance, database: str) -> Counters | None:
    """The block counters of the newest cache_hit recorded for the database (by the sensor or a run)."""
    records = check_history(instance, dg.AssetCheckKey(HEALTH, "cache_hit"), database, limit=1)
    evaluation = check_evaluation(records[0]) if records else None
    if evaluation is None:
        return None
    return Counters.from_metadata({key: entry.value for key, entry in evaluation.metadata.items()})
