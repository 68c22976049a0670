"""`vacuum_analyze` (partitioned by database): VACUUM (ANALYZE) only where the statistics say it helps; FREEZE where
transaction IDs grow old. Checks: `xid_age` (warn / error thresholds) and `dead_tuples_ok`."""

import dagster as dg

from ops_pipelines.capabilities.common import check_result, fleet_asset, fleet_check, retry_if_transient
from ops_pipelines.capability import Capability, Fleets
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.maintenance.vacuum import dead_tuple_verdict, run_vacuum, xid_age_verdict
from ops_pipelines.records.metadata import table


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    fleet = fleets["vacuum_analyze"]

    @fleet_asset(
        capability,
        "vacuum_analyze",
        fleet,
        deps=("table_stats",),
        description=(
            "VACUUM (ANALYZE) of the tables over the database's dead-tuple thresholds (vacuum.dead_ratio, "
            "vacuum.min_dead_tuples) or with stale statistics; FREEZE past vacuum.xid_age_warn. A table locked "
            "longer than lock_timeout is skipped and reported."
        ),
    )
    def vacuum_analyze(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        db = fleet.database(context.partition_key)
        with retry_if_transient():
            actions = run_vacuum(db, log=lambda message: context.log.info(f"{db.name}: {message}"))
        done = [a for a in actions if not a.skipped]
        skipped = [a for a in actions if a.skipped]
        for action in skipped:
            context.log.warning(f"{db.name}: {action.table}: {action.skipped}")
        rows = [
            {
                "table": a.table,
                "why": a.reasons,
                "dead_before": a.dead_before,
                "dead_after": a.dead_after,
                "seconds": round(a.seconds, 3),
                "result": a.skipped or "done",
            }
            for a in actions
        ]
        return dg.MaterializeResult(
            metadata={
                "tables_vacuumed": dg.MetadataValue.int(len(done)),
                "tables_skipped": dg.MetadataValue.int(len(skipped)),
                "dead_tuples_removed": dg.MetadataValue.int(sum(a.dead_before - (a.dead_after or 0) for a in done)),
                "seconds": dg.MetadataValue.float(round(float(sum(a.seconds for a in actions)), 3)),
                "actions": table(
                    rows,
                    table="string",
                    why="string",
                    dead_before="int",
                    dead_after="int",
                    seconds="float",
                    result="string",
                ),
            }
        )

    @fleet_check(
        "vacuum_analyze",
        "xid_age",
        fleet,
        description="Transaction-ID age of the database and its oldest table: warning past vacuum.xid_age_warn, "
        "error past vacuum.xid_age_error (writes stop near 2.1 billion).",
    )
    def xid_age(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return check_result(xid_age_verdict(fleet.database(context.partition_key)))

    @fleet_check(
        "vacuum_analyze",
        "dead_tuples_ok",
        fleet,
        description="No table is left over the dead-tuple thresholds (warning).",
    )
    def dead_tuples_ok(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return check_result(dead_tuple_verdict(fleet.database(context.partition_key)))

    return dg.Definitions(assets=[vacuum_analyze], asset_checks=[xid_age, dead_tuples_ok])
