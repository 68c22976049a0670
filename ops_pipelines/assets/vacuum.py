"""`<db>/vacuum_analyze`: VACUUM (ANALYZE) only where the statistics say it helps; FREEZE where
transaction IDs grow old. Checks: `xid_age` (warn / error thresholds) and `dead_tuples_ok`."""

import dagster as dg

from ops_pipelines.assets.common import asset_key, check_result, database_asset, retry_if_transient
from ops_pipelines.capability import Capability
from ops_pipelines.config import DatabaseConfig, OpsConfig
from ops_pipelines.core.vacuum import dead_tuple_verdict, run_vacuum, xid_age_verdict


def build(config: OpsConfig, db: DatabaseConfig, capability: Capability) -> dg.Definitions:
    key = asset_key(db, "vacuum_analyze")
    settings = db.vacuum

    @database_asset(
        capability,
        db,
        "vacuum_analyze",
        deps=("table_stats",),
        description=(
            f"VACUUM (ANALYZE) of the tables of {db.name} over {settings.dead_ratio:.0%} dead tuples (at least "
            f"{settings.min_dead_tuples:,}) or with stale statistics; FREEZE past transaction-ID age "
            f"{settings.xid_age_warn:,}. A table locked longer than lock_timeout is skipped and reported."
        ),
    )
    def vacuum_analyze(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        with retry_if_transient():
            actions = run_vacuum(db, log=lambda message: context.log.info(f"{db.name}: {message}"))
        done = [a for a in actions if not a.skipped]
        skipped = [a for a in actions if a.skipped]
        for action in skipped:
            context.log.warning(f"{db.name}: {action.table}: {action.skipped}")
        rows = [
            dg.TableRecord(
                {
                    "table": a.table,
                    "why": a.reasons,
                    "dead_before": a.dead_before,
                    "dead_after": a.dead_after,
                    "seconds": round(a.seconds, 3),
                    "result": a.skipped or "done",
                }
            )
            for a in actions
        ]
        return dg.MaterializeResult(
            metadata={
                "tables_vacuumed": dg.MetadataValue.int(len(done)),
                "tables_skipped": dg.MetadataValue.int(len(skipped)),
                "dead_tuples_removed": dg.MetadataValue.int(sum(a.dead_before - (a.dead_after or 0) for a in done)),
                "seconds": dg.MetadataValue.float(round(float(sum(a.seconds for a in actions)), 3)),
                "actions": dg.MetadataValue.table(
                    rows,
                    schema=dg.TableSchema(
                        columns=[
                            dg.TableColumn("table", "string"),
                            dg.TableColumn("why", "string"),
                            dg.TableColumn("dead_before", "int"),
                            dg.TableColumn("dead_after", "int"),
                            dg.TableColumn("seconds", "float"),
                            dg.TableColumn("result", "string"),
                        ]
                    ),
                ),
            }
        )

    @dg.asset_check(
        asset=key,
        name="xid_age",
        description=(
            f"Transaction-ID age of the database and its oldest table: warning past {settings.xid_age_warn:,}, "
            f"error past {settings.xid_age_error:,} (writes stop near 2.1 billion)."
        ),
    )
    def xid_age() -> dg.AssetCheckResult:
        return check_result(xid_age_verdict(db))

    @dg.asset_check(
        asset=key, name="dead_tuples_ok", description="No table is left over the dead-tuple thresholds (warning)."
    )
    def dead_tuples_ok() -> dg.AssetCheckResult:
        return check_result(dead_tuple_verdict(db))

    return dg.Definitions(assets=[vacuum_analyze], asset_checks=[xid_age, dead_tuples_ok])
