"""`archive_<rule>` (partitioned by the databases with a rule of that name): old rows (and their
children) moved to the archive in batches, with the check `archive_consistent`. `dry_run: true` in
the launchpad counts what would move and stops. Moving rows runs only from the archive schedule or
with `confirm: true` in the launchpad (common.refused): never from a casual "Materialize all"."""

from collections.abc import Iterator

import dagster as dg

from ops_pipelines.capabilities.common import (
    DELIBERATE,
    DeliberateConfig,
    check_result,
    fleet_asset,
    fleet_check,
    refused,
    retry_if_transient,
)
from ops_pipelines.capability import Capability, Fleet, Fleets
from ops_pipelines.config import ArchiveRule, DatabaseConfig, OpsConfig
from ops_pipelines.core.archive import run_archive, verify_archive
from ops_pipelines.core.verdict import Verdict
from ops_pipelines.errors import OpsError
from ops_pipelines.records.metadata import table


class ArchiveConfig(DeliberateConfig):
    dry_run: bool = False  # count what would move, change nothing (needs no confirm)


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    names = dict.fromkeys(rule.name for db in config.databases for rule in db.archive)
    built = [_build_rule(capability, name, fleets[f"archive_{name}"]) for name in names]
    return dg.Definitions(assets=[asset for asset, _ in built], asset_checks=[check for _, check in built])


def _rule(db: DatabaseConfig, name: str) -> ArchiveRule:
    return next(rule for rule in db.archive if rule.name == name)


def _describe(rule: ArchiveRule) -> str:
    source = f"{rule.table[0]}.{rule.table[1]}"
    where = f"schema {rule.destination.schema_} of " + ("another database" if rule.destination.dsn else "the database")
    children = ", ".join(_tables(rule.children)) or "none"
    verb = "Deletes (purge: no copy is kept)" if rule.purge else "Moves"
    return (
        f"{verb} rows of {source} older than {rule.older_than} by {rule.age_column}"
        + (f" with {rule.status_column} in {rule.status_in}" if rule.status_column else "")
        + (f" and {rule.where}" if rule.where else "")
        + f", with the rows referencing them ({children})"
        + (f"; the ledger is kept in schema {rule.destination.schema_}" if rule.purge else f", to {where}")
        + f"; {rule.batch_size:,} per batch"
        + (f", for at most {rule.max_runtime} per run." if rule.max_runtime else ".")
    )


def _tables(children) -> list[str]:
    """Every table of the children's tree, parents before their own children."""
    return [name for c in children for name in [f"{c.table[0]}.{c.table[1]}", *_tables(c.children)]]


def _build_rule(capability: Capability, name: str, fleet: Fleet):
    rules = {db.name: _rule(db, name) for db in fleet.databases}
    descriptions = dict.fromkeys(_describe(rule) for rule in rules.values())
    description = (
        next(iter(descriptions))
        if len(descriptions) == 1
        else f"Archive rule {name}; its table, age and destination differ per database (see the config)."
    )

    @fleet_asset(
        capability, f"archive_{name}", fleet, description=f"{description}\n\n{DELIBERATE}", output_required=False
    )
    def archive(context: dg.AssetExecutionContext, config: ArchiveConfig) -> Iterator[dg.MaterializeResult]:
        db = fleet.database(context.partition_key)
        rule = rules[db.name]
        if not config.dry_run and refused(context, config.confirm, db.name):
            return
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
            yield dg.MaterializeResult(
                metadata={
                    "dry_run": dg.MetadataValue.bool(True),
                    "cutoff": dg.MetadataValue.text(run.cutoff.isoformat()),
                    **{f"would_move {t}": dg.MetadataValue.int(n) for t, n in run.would_move.items()},
                }
            )
            return
        if not run.consistent:
            raise OpsError(f"{rule.name}: rows removed from the source differ from rows in the archive: {run.tables}")
        total = sum(f.removed for f in run.tables.values()) + sum(p.rows for p in run.partitions)
        yield dg.MaterializeResult(
            metadata={
                "dry_run": dg.MetadataValue.bool(False),
                "mode": dg.MetadataValue.text("purge: deleted, no copy kept" if rule.purge else "archive"),
                "why_stopped": dg.MetadataValue.text(run.why_stopped),
                **(
                    {"replica_paused_seconds": dg.MetadataValue.float(round(run.replica_paused_seconds, 1))}
                    if rule.replica_dsn
                    else {}
                ),
                "cutoff": dg.MetadataValue.text(run.cutoff.isoformat()),
                "batches": dg.MetadataValue.int(run.batches),
                "rows_moved": dg.MetadataValue.int(total),
                "rows_per_second": dg.MetadataValue.float(round(total / run.seconds, 1) if run.seconds else 0.0),
                **(
                    {
                        "partitions": table(
                            [
                                {
                                    "partition": p.partition,
                                    "what_happened": p.what,
                                    "rows": p.rows,
                                    "seconds": round(p.seconds, 2),
                                }
                                for p in run.partitions
                            ],
                            partition="string",
                            what_happened="string",
                            rows="int",
                            seconds="float",
                        )
                    }
                    if run.partitions
                    else {}
                ),
                "longest_batch_ms": dg.MetadataValue.float(round(run.longest_batch_ms, 1)),
                **{f"rows {t}": dg.MetadataValue.int(f.removed) for t, f in run.tables.items()},
            }
        )

    @fleet_check(
        f"archive_{name}",
        "archive_consistent",
        fleet,
        description="Every row the ledger says was archived is in the archive (count and key checksum).",
    )
    def archive_consistent(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        db = fleet.database(context.partition_key)
        rule = rules[db.name]
        try:
            return check_result(verify_archive(db, rule))
        except OpsError as exc:
            return check_result(Verdict.fail(str(exc)))

    return archive, archive_consistent
