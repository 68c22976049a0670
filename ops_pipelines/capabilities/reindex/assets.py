"""`reindex` (partitioned by database): drop invalid leftovers of failed concurrent builds, then
REINDEX CONCURRENTLY the indexes over the bloat ratio and minimum size. Check: `no_invalid_indexes`."""

import dagster as dg

from ops_pipelines.capabilities.common import check_result, fleet_asset, fleet_check, retry_if_transient
from ops_pipelines.capability import Capability, Fleets
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.maintenance.reindex import invalid_index_verdict, run_reindex
from ops_pipelines.records.metadata import table, with_sizes


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    fleet = fleets["reindex"]

    @fleet_asset(
        capability,
        "reindex",
        fleet,
        deps=("table_stats",),
        description=(
            "Drops invalid indexes, then rebuilds online (REINDEX INDEX CONCURRENTLY) the indexes of the database "
            "over reindex.bloat_ratio bloat and reindex.min_index_size."
        ),
    )
    def reindex(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        db = fleet.database(context.partition_key)
        with retry_if_transient():
            outcome = run_reindex(db, log=lambda message: context.log.info(f"{db.name}: {message}"))
        rows = [
            {
                "index": a.index,
                "table": a.table,
                "action": a.action,
                "bytes_before": a.bytes_before,
                "bytes_after": a.bytes_after,
                "seconds": round(a.seconds, 3),
                "detail": a.detail,
            }
            for a in outcome.actions
        ]
        for action in outcome.actions:
            if action.action == "skipped":
                context.log.warning(f"{db.name}: {action.index}: skipped: {action.detail}")
        return dg.MaterializeResult(
            metadata=with_sizes(
                {
                    "bloat_measured_by": dg.MetadataValue.text(outcome.method),
                    "indexes_rebuilt": dg.MetadataValue.int(sum(a.action == "rebuilt" for a in outcome.actions)),
                    "invalid_dropped": dg.MetadataValue.int(
                        sum(a.action == "dropped invalid" for a in outcome.actions)
                    ),
                    "skipped": dg.MetadataValue.int(sum(a.action == "skipped" for a in outcome.actions)),
                    "bytes_reclaimed": dg.MetadataValue.int(outcome.reclaimed_bytes),
                    "actions": table(
                        rows,
                        index="string",
                        table="string",
                        action="string",
                        bytes_before="int",
                        bytes_after="int",
                        seconds="float",
                        detail="string",
                    ),
                }
            )
        )

    @fleet_check(
        "reindex", "no_invalid_indexes", fleet, description="No index is left invalid by a failed concurrent build."
    )
    def no_invalid_indexes(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        return check_result(invalid_index_verdict(fleet.database(context.partition_key)))

    return dg.Definitions(assets=[reindex], asset_checks=[no_invalid_indexes])
