"""`backup` (partitioned by database): a verified pg_dump of the database, and the checks that say it can be trusted.

Checks: `backup_fresh` (newest complete backup younger than max_age_hours), `backup_checksum`
(sha256 and size match the manifest), `backup_readable` (pg_restore reads the decompressed
catalogue), `backup_size_sane` (warns below half the median of the previous seven).
"""

import datetime as dt

import dagster as dg

from ops_pipelines.adapters.storage import local_storage
from ops_pipelines.capabilities.common import check_result, fleet_asset, fleet_check, retry_if_transient
from ops_pipelines.capability import Capability, Fleets
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backups import checks as backup_checks
from ops_pipelines.core.backups.backup import run_backup
from ops_pipelines.core.backups.catalog import list_backups, stamp_of
from ops_pipelines.core.backups.manifest import BackupManifest
from ops_pipelines.core.verdict import Verdict
from ops_pipelines.markdown import md_cell
from ops_pipelines.records.backup import BACKUP_STAMP
from ops_pipelines.records.metadata import table, with_sizes
from ops_pipelines.units import format_bytes

COUNTS_SHOWN = 200  # the per-table counts table in the UI; the manifest has all of them


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    fleet = fleets["backup"]
    storage = local_storage(config)

    # No FreshnessPolicy: on a partitioned asset it judges the asset as a whole, and each database
    # has its own max_age_hours. `backup_fresh` judges each partition, and the missing-backup sensor acts.
    @fleet_asset(
        capability,
        "backup",
        fleet,
        description=(
            "pg_dump (custom format) of the database, zstd-compressed, with a manifest of sha256 and the "
            f"row count of every table in the dump's snapshot. Stored under {storage.uri('<database>')}."
        ),
    )
    def backup(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        db = fleet.database(context.partition_key)
        with retry_if_transient():
            result = run_backup(db, storage, log=lambda message: context.log.info(f"{db.name}: {message}"))
        context.log.info(f"{db.name}: backup complete: {result.uri}")
        return dg.MaterializeResult(metadata=backup_metadata(result.manifest, result.uri, result.partials_removed))

    def noting_orphans(database: str, verdict, entries) -> dg.AssetCheckResult:
        orphans = backup_checks.orphan_dumps(entries)
        in_progress = bool(orphans) and storage.is_locked(database, "backup")
        return check_result(backup_checks.noting_orphans(verdict, orphans, in_progress))

    @fleet_check(
        "backup",
        "backup_fresh",
        fleet,
        description="The newest complete backup is younger than the database's backup.max_age_hours; warns when a "
        "newer dump has no manifest.",
    )
    def backup_fresh(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        db = fleet.database(context.partition_key)
        now = dt.datetime.now(dt.UTC)
        entries = list_backups(storage, db.name)
        newest = max((e.stamp for e in entries if e.complete), default=None)
        return noting_orphans(db.name, backup_checks.freshness(newest, db.backup.max_age_hours, now), entries)

    @fleet_check(
        "backup",
        "backup_checksum",
        fleet,
        blocking=True,
        description="The newest complete backup's sha256 and size match its manifest; warns when a newer dump has no "
        "manifest.",
    )
    def backup_checksum(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        db = fleet.database(context.partition_key)
        entries = list_backups(storage, db.name)
        complete = [e for e in entries if e.complete]
        if not complete:
            return check_result(Verdict.fail("no complete backup (dump + manifest) exists"))
        return noting_orphans(db.name, backup_checks.checksum(storage, complete[-1]), entries)

    @fleet_check(
        "backup",
        "backup_readable",
        fleet,
        blocking=True,
        description="pg_restore --list reads the newest backup's decompressed catalogue.",
    )
    def backup_readable(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        db = fleet.database(context.partition_key)
        entries = list_backups(storage, db.name)
        return _on_newest(entries, lambda entry: backup_checks.readable(storage, entry, db.restore_test.bin_dir))

    @fleet_check(
        "backup",
        "backup_size_sane",
        fleet,
        description="The newest backup is at least half the median size of the previous seven (warning).",
    )
    def backup_size_sane(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        db = fleet.database(context.partition_key)
        return check_result(backup_checks.size_sane(storage, list_backups(storage, db.name)))

    return dg.Definitions(
        assets=[backup], asset_checks=[backup_fresh, backup_checksum, backup_readable, backup_size_sane]
    )


def _on_newest(entries, judge) -> dg.AssetCheckResult:
    complete = [e for e in entries if e.complete]
    if not complete:
        return check_result(Verdict.fail("no complete backup (dump + manifest) exists"))
    return check_result(judge(complete[-1]))


def backup_metadata(manifest: BackupManifest, uri: str, partials_removed: list[str]) -> dict:
    seconds = max(manifest.duration_seconds, 1e-6)
    counts = sorted(manifest.table_counts.items(), key=lambda item: -item[1])
    summary = (
        f"**{format_bytes(manifest.bytes)}** (zstd level {manifest.compression_level}, "
        f"{manifest.dump_bytes / max(manifest.bytes, 1):.1f}× smaller than pg_dump's "
        f"{format_bytes(manifest.dump_bytes)}) "
        f"in {seconds:.1f} s; {len(counts)} tables, {manifest.total_rows:,} rows counted in the dump's snapshot.\n\n"
        f"Server {md_cell(manifest.server_version)}; {md_cell(manifest.pg_dump_version)}.\n\n"
        "| table | rows |\n|---|---:|\n" + "\n".join(f"| {md_cell(name)} | {rows:,} |" for name, rows in counts[:15])
    )
    return with_sizes(
        {
            BACKUP_STAMP: dg.MetadataValue.text(stamp_of(manifest.dump_key)),
            "path": dg.MetadataValue.path(uri),
            "bytes": dg.MetadataValue.int(manifest.bytes),
            "dump_bytes": dg.MetadataValue.int(manifest.dump_bytes),
            "duration_seconds": dg.MetadataValue.float(round(seconds, 3)),
            "mb_per_second": dg.MetadataValue.float(round(manifest.dump_bytes / 1e6 / seconds, 1)),
            "tables": dg.MetadataValue.int(len(counts)),
            "total_rows": dg.MetadataValue.int(manifest.total_rows),
            "sha256": dg.MetadataValue.text(manifest.sha256),
            "server_version": dg.MetadataValue.text(manifest.server_version),
            "partial_files_removed": dg.MetadataValue.int(len(partials_removed)),
            "row_counts": table(
                [{"table": name, "rows": rows} for name, rows in counts[:COUNTS_SHOWN]], table="string", rows="int"
            ),
            "summary": dg.MetadataValue.md(summary),
        }
    )
