"""`offsite_restore_test` (partitioned by database, only with `backup_store.s3`): the disaster-recovery
drill. The newest complete backup IN S3 is read from S3 (not the local copy), its object's sha256
metadata and its streamed sha256 are checked against its manifest (also read from S3), and it is
restored into a sandbox and verified like `restore_test`. A pass writes its restore-ok marker in S3.

Check `offsite_restorable`: an off-site backup passed this drill within `restore_test.offsite_max_age`.
"""

import datetime as dt
from collections.abc import Iterator

import dagster as dg

from ops_pipelines.assets.common import Fleets, check_result, fleet_asset, fleet_check, retry_if_transient
from ops_pipelines.assets.restore_test import restore_metadata
from ops_pipelines.capability import Capability
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backup_catalog import list_backups, newest_verified_stamp, read_manifest
from ops_pipelines.core.restore import RestoreRefused, RestoreReport, recent_restore, run_restore_test
from ops_pipelines.errors import OpsError
from ops_pipelines.resources.sandbox import sandbox_for
from ops_pipelines.resources.storage import offsite_storage


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    fleet = fleets["offsite_restore_test"]
    offsite = offsite_storage(config)
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
        entries = [e for e in list_backups(offsite, db.name) if e.complete]
        if not entries:
            raise OpsError(f"no complete backup of {db.name} in {offsite.uri(db.name)}: nothing off-site to test")
        entry = entries[-1]
        manifest = read_manifest(offsite, entry)
        stored = offsite.stat(manifest.dump_key)
        try:
            if stored is None or stored.sha256 != manifest.sha256:
                raise RestoreRefused(
                    f"{offsite.uri(manifest.dump_key)}: object sha256 {stored.sha256 if stored else 'missing'} is "
                    f"not the manifest's {manifest.sha256}: not restored"
                )
            with retry_if_transient():
                report = run_restore_test(
                    db, offsite, entry, sandbox_for(db), log=lambda message: context.log.info(f"{db.name}: {message}")
                )
        except RestoreRefused as exc:
            report = RestoreReport(db.name, entry.stamp, "not opened", restore_errors=[str(exc)])
        metadata = {**restore_metadata(report), "source": dg.MetadataValue.text(offsite.uri(manifest.dump_key))}
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
        newest = newest_verified_stamp(offsite, db.name)
        return check_result(
            recent_restore(newest, db.restore_test.offsite_max_age.to_timedelta(), dt.datetime.now(dt.UTC))
        )

    return dg.Definitions(assets=[offsite_restore_test], asset_checks=[offsite_restorable])
