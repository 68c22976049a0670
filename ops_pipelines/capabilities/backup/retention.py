"""`backup_retention` (partitioned by database): keeps N daily, weekly and monthly backups and deletes the rest,
locally and off-site. Never the newest, never the newest proven, never a dump without a
manifest (reported instead). `dry_run: true` in the launchpad shows the plan and deletes nothing.
"""

import dagster as dg

from ops_pipelines.adapters.storage import local_storage, offsite_storage
from ops_pipelines.capabilities.common import fleet_asset
from ops_pipelines.capability import Capability, Fleets
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backups.catalog import list_backups
from ops_pipelines.core.backups.proof import newest_proof
from ops_pipelines.core.backups.retention import apply_retention, merge_listings, plan_retention
from ops_pipelines.localtime import local_time
from ops_pipelines.markdown import md_cell
from ops_pipelines.records.metadata import table, with_sizes
from ops_pipelines.units import format_bytes


class RetentionConfig(dg.Config):
    dry_run: bool = False


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    fleet = fleets["backup_retention"]
    ops_config = config  # the asset's own `config` parameter is the launchpad's RetentionConfig

    @fleet_asset(
        capability,
        "backup_retention",
        fleet,
        deps=("backup",),
        description=(
            "Deletes backups of the database outside its retention policy (keep N daily, weekly and monthly), "
            "locally and off-site; never the newest, never the newest proven (its newest restore test passed). "
            "Set dry_run to preview."
        ),
    )
    def backup_retention(context: dg.AssetExecutionContext, config: RetentionConfig) -> dg.MaterializeResult:
        db = fleet.database(context.partition_key)
        policy = ops_config.retention_for(db)
        run_config = config
        stores = [s for s in [local_storage(ops_config), offsite_storage(ops_config)] if s is not None]
        listings = [(store, list_backups(store, db.name)) for store in stores]
        # What stands proven is judged in each store (markers bound to bytes, newest evidence wins),
        # and only the local store's complete backups compete for the local slots (core/backups/retention.py).
        proven = {p.backup for store, entries in listings if (p := newest_proof(store, entries)[0]) is not None}
        local = {e.stamp for e in listings[0][1] if e.complete}
        merged = merge_listings([entries for _, entries in listings])
        decisions = plan_retention(merged, policy, ops_config.timezone, proven=proven, local=local)
        outcome = apply_retention(decisions, listings, run_config.dry_run)
        counts = {action: sum(d.action == action for d in decisions) for action in ("keep", "delete", "report")}
        for decision in decisions:
            if decision.action == "report":
                context.log.warning(f"{db.name}: {decision.entry.stamp}: {decision.reasons[0]}; left in place")
        verb = "would delete" if run_config.dry_run else "deleted"
        context.log.info(
            f"{db.name}: kept {counts['keep']}, {verb} {counts['delete']} ({format_bytes(outcome.freed_bytes)}), "
            f"reported {counts['report']}"
        )
        held_in = {
            stamp: [store.description for store, entries in listings if any(e.stamp == stamp for e in entries)]
            for stamp in (d.entry.stamp for d in decisions)
        }
        rows = [
            {
                "backup": d.entry.stamp,
                "stores": ", ".join(held_in[d.entry.stamp]),
                "started": local_time(d.entry.started_at, ops_config.timezone),
                "action": d.action if not (run_config.dry_run and d.action == "delete") else "would delete",
                "bytes": d.entry.dump.bytes if d.entry.dump else 0,
                "reasons": "; ".join(d.reasons),
            }
            for d in reversed(decisions)
        ]
        metadata = with_sizes(
            {
                "dry_run": dg.MetadataValue.bool(run_config.dry_run),
                "kept": dg.MetadataValue.int(counts["keep"]),
                "deleted": dg.MetadataValue.int(0 if run_config.dry_run else counts["delete"]),
                "would_delete": dg.MetadataValue.int(counts["delete"] if run_config.dry_run else 0),
                "reported": dg.MetadataValue.int(counts["report"]),
                "freed_bytes": dg.MetadataValue.int(0 if run_config.dry_run else outcome.freed_bytes),
                "decisions": table(
                    rows,
                    backup="string",
                    stores="string",
                    started="string",
                    action="string",
                    bytes="int",
                    reasons="string",
                ),
                "delete_failures": dg.MetadataValue.int(len(outcome.failed)),
            }
        )
        if outcome.failed:
            for failure in outcome.failed:
                context.log.error(f"{db.name}: could not delete {failure}")
            # The rest was done; what failed stays planned and is tried again on the next run.
            raise dg.Failure(
                description=f"{db.name}: could not delete {len(outcome.failed)} object(s), first {outcome.failed[0]}",
                metadata={
                    **metadata,
                    "failed": dg.MetadataValue.md("\n".join(f"- {md_cell(f)}" for f in outcome.failed)),
                },
            )
        return dg.MaterializeResult(metadata=metadata)

    return dg.Definitions(assets=[backup_retention])
