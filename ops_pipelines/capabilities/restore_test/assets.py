"""`restore_test` (partitioned by database): restore a backup into a sandbox and prove it holds what its manifest says.

Its history answers "when was this database last proven recoverable, and how long did it take?"
(`restore_seconds` is the recovery-time figure). Checks: `restore_verified` (blocking, error on any
mismatch or pg_restore error) and `restore_recent` (a restore test passed within max_age).

A failed verification of the newest backup fails the step: the asset shows failed, never
"Materialized". A test of an older backup (named in the launchpad) is recorded as such (`tested`),
its failure is a warning, and it never makes the newest backup look unproven.
"""

import datetime as dt
from collections.abc import Iterator

import dagster as dg

from ops_pipelines.adapters.sandbox import sandbox_for
from ops_pipelines.adapters.storage import local_storage
from ops_pipelines.capabilities.common import (
    check_result,
    fleet_asset,
    fleet_check,
    fleet_check_spec,
    retry_if_transient,
)
from ops_pipelines.capability import Capability, Fleets
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backups.catalog import list_backups
from ops_pipelines.core.backups.checks import orphan_dumps
from ops_pipelines.core.backups.proof import newest_proof
from ops_pipelines.core.backups.restore import RestoreRefused, RestoreReport, recent_restore, run_restore_test
from ops_pipelines.errors import OpsError
from ops_pipelines.records.restore import RestoreTestRecord


class RestoreTestConfig(dg.Config):
    backup: str = ""  # a backup stamp like 20261122T190000Z; empty: the newest complete backup


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    fleet = fleets["restore_test"]
    storage = local_storage(config)
    sandboxes = sorted({db.restore_test.sandbox for db in fleet.databases})

    @fleet_asset(
        capability,
        "restore_test",
        fleet,
        deps=("backup",),
        kinds=("postgres", "docker") if "docker" in sandboxes else ("postgres",),
        check_specs=[
            fleet_check_spec(
                "restore_test",
                "restore_verified",
                fleet,
                blocking=True,
                description="Every table of the manifest restored with exactly its row count; pg_restore reported no "
                "error; sanity queries returned rows.",
            )
        ],
        description=(
            f"Restores a backup of the database into a sandbox ({', '.join(sandboxes)}) and verifies it against "
            "the manifest. restore_seconds is the measured recovery time. A failed verification of the newest "
            "backup fails the run (the asset shows failed); a test of an older backup, named in the launchpad, "
            "is marked `tested: an older backup` and never makes the newest look unproven (see database_status)."
        ),
    )
    def restore_test(context: dg.AssetExecutionContext, config: RestoreTestConfig) -> Iterator:
        db = fleet.database(context.partition_key)
        entries = list_backups(storage, db.name)
        newest = ([e for e in entries if e.complete][-1:] or [None])[0]
        if config.backup:
            chosen = [e for e in entries if e.stamp == config.backup]
            if not chosen:
                raise OpsError(f"no backup {config.backup} of {db.name} in {storage.uri(db.name)}")
            why = "named in the launchpad"
        else:
            chosen = [newest] if newest else []
            if not chosen:
                raise OpsError(f"no complete backup of {db.name} to restore")
            why = "the newest complete backup"
            orphans = orphan_dumps(entries)
            if orphans:
                why += f"; newer dump {', '.join(orphans)} has no manifest (did not complete) and was not tested"
                context.log.warning(f"{db.name}: testing backup {chosen[0].stamp}: {why}")
        entry = chosen[0]
        # A test of an older backup (an operator checking last month's) answers for that backup only:
        # its evidence binds to that backup's bytes (core/backups/proof.py), so it never makes the newest look
        # unproven, and its failure is a warning, not the red of a failed newest backup.
        older = newest is not None and entry.stamp < newest.stamp
        try:
            with retry_if_transient():
                report = run_restore_test(
                    db, storage, entry, sandbox_for(db), log=lambda message: context.log.info(f"{db.name}: {message}")
                )
        except RestoreRefused as exc:  # damaged, truncated or without a manifest: a failed verification too
            report = RestoreReport(db.name, entry.stamp, "not opened", restore_errors=[str(exc)])
        tested = f"an older backup (the newest is {newest.stamp})" if older and newest else "the newest backup"
        verdict = (
            "verified"
            if report.passed
            else f"FAILED ({len(report.mismatches)} mismatches, {len(report.restore_errors)} restore errors)"
        )
        context.log.info(f"{db.name}: backup {report.backup}, {tested}, {verdict}")
        metadata = {
            **RestoreTestRecord.to_metadata(report),
            "tested": dg.MetadataValue.text(tested),
            "chosen_because": dg.MetadataValue.text(why),
        }
        check = dg.AssetCheckResult(
            check_name="restore_verified",
            passed=report.passed,
            severity=dg.AssetCheckSeverity.WARN if older else dg.AssetCheckSeverity.ERROR,
            description=(f"{tested}: " if older else "") + _describe(report),
            metadata={
                "backup": report.backup,
                "tested": tested,
                "mismatches": len(report.mismatches),
                "restore_errors": len(report.restore_errors),
            },
        )
        if report.passed or older:
            yield dg.MaterializeResult(metadata=metadata, check_results=[check])
            return
        # The newest backup failed its verification: the check says why, and the asset is recorded
        # as failed, not "Materialized" — the catalog shows red for a backup that is not restorable.
        yield check
        raise dg.Failure(f"{db.name}: verification failed: {_describe(report)}", metadata=metadata)

    @fleet_check(
        "restore_test",
        "restore_recent",
        fleet,
        description="A backup of the database passed a restore test within its restore_test.max_age.",
    )
    def restore_recent(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        db = fleet.database(context.partition_key)
        now = dt.datetime.now(dt.UTC)
        max_age = db.restore_test.max_age.to_timedelta()
        proof, withdrawn = newest_proof(storage, list_backups(storage, db.name))
        return check_result(recent_restore(proof.backup if proof else None, max_age, now, withdrawn))

    return dg.Definitions(assets=[restore_test], asset_checks=[restore_recent])


def _describe(report: RestoreReport) -> str:
    if report.passed:
        return f"{report.tables_checked} tables, {report.rows_checked:,} rows match the manifest of {report.backup}"
    problems = report.restore_errors[:2] + [f"{m.table}: {m.problem}" for m in report.mismatches[:3]]
    return f"backup {report.backup}: " + "; ".join(problems)
