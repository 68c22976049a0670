"""`offsite_copy` (partitioned by database): the newest local backup, copied to S3, with a check that re-reads it.

Built only when `backup_store.s3` is configured.
"""

import dagster as dg

from ops_pipelines.adapters.storage import local_storage, offsite_storage
from ops_pipelines.capabilities.common import check_result, fleet_asset, fleet_check
from ops_pipelines.capability import Capability, Fleets
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backups.catalog import complete_backups, read_manifest
from ops_pipelines.core.backups.offsite import copy_backup, verify_copy
from ops_pipelines.core.verdict import Verdict
from ops_pipelines.errors import OpsError
from ops_pipelines.history import last_check_failed
from ops_pipelines.records.backup import OffsiteCopyRecord


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    fleet = fleets["offsite_copy"]
    local = local_storage(config)
    s3, target = config.backup_store.s3, offsite_storage(config)
    matches_key = dg.AssetCheckKey(dg.AssetKey("offsite_copy"), "offsite_matches")
    if s3 is None or target is None:
        raise OpsError("offsite_copy is built only when backup_store.s3 is set (the registry says so)")

    @fleet_asset(
        capability,
        "offsite_copy",
        fleet,
        deps=("backup",),
        kinds=("s3",),
        description=f"The newest complete backup of the database, copied to s3://{s3.bucket}/{s3.prefix}<database>/.",
    )
    def offsite_copy(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        db = fleet.database(context.partition_key)
        backups = complete_backups(local, db.name)
        if not backups:
            raise OpsError(f"no complete local backup of {db.name} to copy")
        # The last full re-read of this copy failed (an in-place tamper keeps size and metadata): send it again.
        resend = last_check_failed(context.instance, matches_key, db.name)
        result = copy_backup(local, target, backups[-1], resend=resend)
        verb = "already off-site" if result.already_there else f"copied {result.copied_bytes:,} bytes"
        if resend:
            verb += " (sent again: the last offsite_matches failed)"
        context.log.info(f"{db.name}: {verb}: {result.uri}")
        record = OffsiteCopyRecord(
            backup=backups[-1].stamp,
            uri=result.uri,
            sha256=result.manifest.sha256,
            bytes=result.manifest.bytes,
            copied_bytes=result.copied_bytes,
            seconds=result.seconds,
            already_there=result.already_there,
        )
        return dg.MaterializeResult(metadata=record.to_metadata())

    @fleet_check(
        "offsite_copy",
        "offsite_matches",
        fleet,
        blocking=True,
        description="The off-site copy of the newest backup exists and re-reads with the manifest's size and sha256.",
    )
    def offsite_matches(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        db = fleet.database(context.partition_key)
        backups = complete_backups(local, db.name)
        if not backups:
            return check_result(Verdict.fail("no complete local backup to compare with"))
        return check_result(verify_copy(local, target, read_manifest(local, backups[-1])))

    return dg.Definitions(assets=[offsite_copy], asset_checks=[offsite_matches])
