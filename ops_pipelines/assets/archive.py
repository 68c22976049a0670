"""`<db>/archive_<rule>`: old rows (and their children) moved to the archive in batches, with the
check `archive_consistent`. `dry_run: true` in the launchpad counts what would move and stops."""

import dagster as dg

from ops_pipelines.assets.common import asset_key, check_result, database_asset, retry_if_transient
from ops_pipelines.capability import Capability
from ops_pipelines.config import ArchiveRule, DatabaseConfig, OpsConfig
from ops_pipelines.core.archive import run_archive, verify_archive
from ops_pipelines.core.verdict import Verdict
from ops_pipelines.errors import OpsError


class ArchiveConfig(dg.Config):
    dry_run: bool = False


def build(config: OpsConfig, db: DatabaseConfig, capability: Capability) -> dg.Definitions:
    assets, checks = [], []
    for rule in db.archive:
        asset, check = _build_rule(capability, db, rule)
        assets.append(asset)
        checks.append(check)
    return dg.Definitions(assets=assets, asset_checks=checks)


def _build_rule(capability: Capability, db: DatabaseConfig, rule: ArchiveRule):
    key = asset_key(db, f"archive_{rule.name}")
    source = f"{rule.table[0]}.{rule.table[1]}"
    where = f"schema {rule.destination.schema_} of " + ("another database" if rule.destination.dsn else db.name)
    children = ", ".join(f"{c.table[0]}.{c.table[1]}" for c in rule.children) or "none"

    @database_asset(
        capability,
        db,
        f"archive_{rule.name}",
        description=(
            f"Moves rows of {source} older than {rule.older_than} by {rule.age_column}"
            + (f" with {rule.status_column} in {rule.status_in}" if rule.status_column else "")
            + (f" and {rule.where}" if rule.where else "")
            + f", with their children ({children}), to {where}; {rule.batch_size:,} per batch."
        ),
    )
    def archive(context: dg.AssetExecutionContext, config: ArchiveConfig) -> dg.MaterializeResult:
        with retry_if_transient():
            run = run_archive(
                db,
                rule,
                dry_run=config.dry_run,
                run_id=context.run.run_id,
                log=lambda message: context.log.info(f"{db.name}/{rule.name}: {message}"),
            )
        if config.dry_run:
            context.log.info(f"{db.name}/{rule.name}: dry run, would move {run.would_move}")
            return dg.MaterializeResult(
                metadata={
                    "dry_run": dg.MetadataValue.bool(True),
                    "cutoff": dg.MetadataValue.text(run.cutoff.isoformat()),
                    **{f"would_move {t}": dg.MetadataValue.int(n) for t, n in run.would_move.items()},
                }
            )
        if not run.consistent:
            raise OpsError(f"{rule.name}: rows removed from the source differ from rows in the archive: {run.tables}")
        total = sum(f.removed for f in run.tables.values())
        return dg.MaterializeResult(
            metadata={
                "dry_run": dg.MetadataValue.bool(False),
                "cutoff": dg.MetadataValue.text(run.cutoff.isoformat()),
                "batches": dg.MetadataValue.int(run.batches),
                "rows_moved": dg.MetadataValue.int(total),
                "rows_per_second": dg.MetadataValue.float(round(total / run.seconds, 1) if run.seconds else 0.0),
                "longest_batch_ms": dg.MetadataValue.float(round(run.longest_batch_ms, 1)),
                **{f"rows {t}": dg.MetadataValue.int(f.removed) for t, f in run.tables.items()},
            }
        )

    @dg.asset_check(
        asset=key,
        name="archive_consistent",
        description="Every row the ledger says was archived is in the archive (count and key checksum).",
    )
    def archive_consistent() -> dg.AssetCheckResult:
        try:
            return check_result(verify_archive(db, rule))
        except OpsError as exc:
            return check_result(Verdict(False, False, str(exc)))

    return archive, archive_consistent
