"""`offsite_restore_test` (partitioned by database, only with `backup_store.s3`): the disaster-recovery
drill. The newest complete backup IN S3 that this instance recorded (its manifest in the local store,
or an `offsite_copy` of it in the event log; core/backups/offsite_trust.py) is read from S3 (not the local
copy): its manifest in S3 must name itself and equal the recorded one, its object's sha256 metadata
and its streamed sha256 must match, and it is restored into a sandbox and verified like
`restore_test`. The result is left in S3 as evidence bound to those bytes (core/backups/proof.py): a pass
proves the copy, a failure withdraws an earlier proof of it.

Check `offsite_restorable`: an off-site backup passed this drill within `restore_test.offsite_max_age`.
"""

import datetime as dt
from collections.abc import Iterator

import dagster as dg

from ops_pipelines.adapters.sandbox import sandbox_for
from ops_pipelines.adapters.storage import StorageError, local_storage, offsite_storage
from ops_pipelines.capabilities.common import check_result, fleet_asset, fleet_check, retry_if_transient
from ops_pipelines.capability import Capability, Fleets
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backups.catalog import list_backups
from ops_pipelines.core.backups.offsite_trust import choose_offsite
from ops_pipelines.core.backups.proof import newest_proof, record_result
from ops_pipelines.core.backups.restore import RestoreRefused, RestoreReport, recent_restore, run_restore_test
from ops_pipelines.errors import OpsError
from ops_pipelines.history import recorded_copies
from ops_pipelines.records.restore import RestoreTestRecord


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    fleet = fleets["offsite_restore_test"]
    offsite, local = offsite_storage(config), local_storage(config)
    if offsite is None:  # the registry builds this part only with S3
        raise OpsError("offsite_restore_test needs backup_store.s3")

    @fleet_asset(
        capability,
        "offsite_restore_test",
        fleet,
        deps=("offsite_copy",),
        description="The disaster-recovery drill: the newest backup in S3, read from S3, its object metadata and "
        "content checked against its manifest, restored into a sandbox and verified row by row. A failed drill "
        "fails the run.",
    )
    def offsite_restore_test(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        db = fleet.database(context.partition_key)
        choice = choose_offsite(offsite, local, db.name, recorded_copies(context.instance, db.name))
        for note in choice.skipped:
            context.log.warning(f"{db.name}: {note}")
        if choice.entry is None or choice.manifest is None:
            raise OpsError(
                f"no complete backup of {db.name} in {offsite.uri(db.name)} that this instance recorded: nothing "
                "off-site to test" + (f" ({choice.skipped[0]})" if choice.skipped else "")
            )
        entry, trusted = choice.entry, choice.manifest
        refusal = choice.problem or object_problem(offsite, trusted)
        if refusal:  # found before any read of the dump: recorded here, withdrawing an earlier proof
            report = RestoreReport(db.name, entry.stamp, "not opened", restore_errors=[refusal])
            record_quietly(offsite, trusted, entry.stamp, report, context.log.warning)
        else:
            try:
                with retry_if_transient():
                    report = run_restore_test(
                        db,
                        offsite,
                        entry,
                        sandbox_for(db),
                        log=lambda message: context.log.info(f"{db.name}: {message}"),
                        trusted_manifest=trusted,
                    )
            except RestoreRefused as exc:  # damaged or truncated: run_restore_test recorded it
                report = RestoreReport(db.name, entry.stamp, "not opened", restore_errors=[str(exc)])
        metadata = {
            **RestoreTestRecord.to_metadata(report),
            "source": dg.MetadataValue.text(offsite.uri(trusted.dump_key)),
        }
        if not report.passed:
            problems = report.restore_errors[:1] + [f"{m.table}: {m.problem}" for m in report.mismatches[:2]]
            raise dg.Failure(
                f"{db.name}: off-site backup {entry.stamp} failed: {'; '.join(problems)}", metadata=metadata
            )
        context.log.info(f"{db.name}: off-site backup {entry.stamp} restored and verified from S3")
        yield dg.MaterializeResult(metadata=metadata)

    @fleet_check(
        "offsite_restore_test",
        "offsite_restorable",
        fleet,
        description="An off-site (S3) backup of the database passed the drill within restore_test.offsite_max_age.",
    )
    def offsite_restorable(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        db = fleet.database(context.partition_key)
        proof, withdrawn = newest_proof(offsite, list_backups(offsite, db.name))
        max_age = db.restore_test.offsite_max_age.to_timedelta()
        return check_result(
            recent_restore(proof.backup if proof else None, max_age, dt.datetime.now(dt.UTC), withdrawn)
        )

    return dg.Definitions(assets=[offsite_restore_test], asset_checks=[offsite_restorable])


def object_problem(offsite, manifest) -> str | None:
    """The object's own sha256 metadata must be the manifest's before its bytes are read."""
    stored = offsite.stat(manifest.dump_key)
    if stored is None or stored.sha256 != manifest.sha256:
        return (
            f"{offsite.uri(manifest.dump_key)}: object sha256 {stored.sha256 if stored else 'missing'} is not the "
            f"manifest's {manifest.sha256}: not restored"
        )
    return None


def record_quietly(offsite, manifest, stamp: str, report: RestoreReport, warn) -> None:
    """Leave a refusal found before the restore as evidence too (it withdraws that copy's proof)."""
    try:
        record_result(offsite, manifest, stamp, report.to_data(), passed=False)
    except StorageError as exc:
        warn(f"the failed drill of {stamp} could not be recorded in S3: {exc}")
