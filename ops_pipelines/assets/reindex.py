"""`<db>/reindex`: drop invalid leftovers of failed concurrent builds, then REINDEX CONCURRENTLY the
indexes over the bloat ratio and minimum size. Check: `no_invalid_indexes`."""

import dagster as dg

from ops_pipelines.assets.common import asset_key, check_result, database_asset, retry_if_transient
from ops_pipelines.capability import Capability
from ops_pipelines.config import DatabaseConfig, OpsConfig
from ops_pipelines.core.reindex import invalid_index_verdict, run_reindex
from ops_pipelines.units import format_bytes


def build(config: OpsConfig, db: DatabaseConfig, capability: Capability) -> dg.Definitions:
    key = asset_key(db, "reindex")

    @database_asset(
        capability,
        db,
        "reindex",
        deps=("table_stats",),
        description=(
            f"Drops invalid indexes, then rebuilds online (REINDEX INDEX CONCURRENTLY) the indexes of {db.name} "
            f"over {db.reindex.bloat_ratio:.0%} bloat and {format_bytes(db.reindex.min_index_size)}."
        ),
    )
    def reindex(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        with retry_if_transient():
            outcome = run_reindex(db, log=lambda message: context.log.info(f"{db.name}: {message}"))
        rows = [
            dg.TableRecord(
                {
                    "index": a.index,
                    "table": a.table,
                    "action": a.action,
                    "bytes_before": a.bytes_before,
                    "bytes_after": a.bytes_after,
                    "seconds": round(a.seconds, 3),
                    "detail": a.detail,
                }
            )
            for a in outcome.actions
        ]
        for action in outcome.actions:
            if action.action == "skipped":
                context.log.warning(f"{db.name}: {action.index}: skipped: {action.detail}")
        return dg.MaterializeResult(
            metadata={
                "bloat_measured_by": dg.MetadataValue.text(outcome.method),
                "indexes_rebuilt": dg.MetadataValue.int(sum(a.action == "rebuilt" for a in outcome.actions)),
                "invalid_dropped": dg.MetadataValue.int(sum(a.action == "dropped invalid" for a in outcome.actions)),
                "skipped": dg.MetadataValue.int(sum(a.action == "skipped" for a in outcome.actions)),
                "bytes_reclaimed": dg.MetadataValue.int(outcome.reclaimed_bytes),
                "actions": dg.MetadataValue.table(
                    rows,
                    schema=dg.TableSchema(
                        columns=[
                            dg.TableColumn("index", "string"),
                            dg.TableColumn("table", "string"),
                            dg.TableColumn("action", "string"),
                            dg.TableColumn("bytes_before", "int"),
                            dg.TableColumn("bytes_after", "int"),
                            dg.TableColumn("seconds", "float"),
                            dg.TableColumn("detail", "string"),
                        ]
                    ),
                ),
            }
        )

    @dg.asset_check(
        asset=key, name="no_invalid_indexes", description="No index is left invalid by a failed concurrent build."
    )
    def no_invalid_indexes() -> dg.AssetCheckResult:
        return check_result(invalid_index_verdict(db))

    return dg.Definitions(assets=[reindex], asset_checks=[no_invalid_indexes])
