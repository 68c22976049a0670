"""`<db>/backup`: a verified pg_dump of the database, and the checks that say it can be trusted.

Checks: `backup_fresh` (newest complete backup younger than max_age_hours), `backup_checksum`
(sha256 and size match the manifest), `backup_readable` (pg_restore reads the decompressed
catalogue), `backup_size_sane` (warns below half the median of the previous seven).
"""

import datetime as dt

import dagster as dg

from ops_pipelines.assets.common import asset_key, check_result, database_asset, retry_if_transient
from ops_pipelines.capability import Capability
from ops_pipelines.config import DatabaseConfig, OpsConfig
from ops_pipelines.core import backup_checks
from ops_pipelines.core.backup import run_backup
from ops_pipelines.core.backup_catalog import list_backups, stamp_of
from ops_pipelines.core.manifest import BackupManifest
from ops_pipelines.core.verdict import Verdict
from ops_pipelines.markdown import md_cell
from ops_pipelines.resources.storage import local_storage
from ops_pipelines.units import format_bytes

COUNTS_SHOWN = 200  # the per-table counts table in the UI; the manifest has all of them
BACKUP_STAMP = "backup_stamp"  # metadata: which backup a materialization made (read with `backup_stamp`)


def backup_stamp(metadata) -> str | None:
    """The stamp of the backup a `<db>/backup` materialization made, or None (one made before this entry)."""
    entry = metadata.get(BACKUP_STAMP)
    return entry.value if entry is not None else None


def build(config: OpsConfig, db: DatabaseConfig, capability: Capability) -> dg.Definitions:
    key = asset_key(db, "backup")
    storage = local_storage(config)
    max_age = dt.timedelta(hours=db.backup.max_age_hours)

    @database_asset(
        capability,
        db,
        "backup",
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=max_age),
        description=(
            f"pg_dump (custom format) of {db.name}, zstd-compressed, with a manifest of sha256 and the "
            f"row count of every table in the dump's snapshot. Stored under {storage.uri(db.name)}."
        ),
    )
    def backup(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        with retry_if_transient():
            result = run_backup(db, storage, log=lambda message: context.log.info(f"{db.name}: {message}"))
        context.log.info(f"{db.name}: backup complete: {result.uri}")
        return dg.MaterializeResult(metadata=backup_metadata(result.manifest, result.uri, result.partials_removed))

    def noting_orphans(verdict, entries) -> dg.AssetCheckResult:
        orphans = backup_checks.orphan_dumps(entries)
        in_progress = bool(orphans) and storage.is_locked(db.name, "backup")
        return check_result(backup_checks.noting_orphans(verdict, orphans, in_progress))

    @dg.asset_check(
        asset=key,
        name="backup_fresh",
        description=f"The newest complete backup is younger than {db.backup.max_age_hours:g} h; warns when a newer "
        "dump has no manifest.",
    )
    def backup_fresh() -> dg.AssetCheckResult:
        now = dt.datetime.now(dt.UTC)
        entries = list_backups(storage, db.name)
        newest = max((e.stamp for e in entries if e.complete), default=None)
        return noting_orphans(backup_checks.freshness(newest, db.backup.max_age_hours, now), entries)

    @dg.asset_check(
        asset=key,
        name="backup_checksum",
        blocking=True,
        description="The newest complete backup's sha256 and size match its manifest; warns when a newer dump has no "
        "manifest.",
    )
    def backup_checksum() -> dg.AssetCheckResult:
        entries = list_backups(storage, db.name)
        complete = [e for e in entries if e.complete]
        if not complete:
            return check_result(Verdict(False, False, "no complete backup (dump + manifest) exists"))
        return noting_orphans(backup_checks.checksum(storage, complete[-1]), entries)

    @dg.asset_check(
        asset=key,
        name="backup_readable",
        blocking=True,
        description="pg_restore --list reads the newest backup's decompressed catalogue.",
    )
    def backup_readable() -> dg.AssetCheckResult:
        entries = list_backups(storage, db.name)
        return _on_newest(entries, lambda entry: backup_checks.readable(storage, entry, db.restore_test.bin_dir))

    @dg.asset_check(
        asset=key,
        name="backup_size_sane",
        description="The newest backup is at least half the median size of the previous seven (warning).",
    )
    def backup_size_sane() -> dg.AssetCheckResult:
        return check_result(backup_checks.size_sane(storage, list_backups(storage, db.name)))

    return dg.Definitions(
        assets=[backup], asset_checks=[backup_fresh, backup_checksum, backup_readable, backup_size_sane]
    )


def _on_newest(entries, judge) -> dg.AssetCheckResult:
    complete = [e for e in entries if e.complete]
    if not complete:
        return check_result(Verdict(False, False, "no complete backup (dump + manifest) exists"))
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
    return {
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
        "row_counts": dg.MetadataValue.table(
            [dg.TableRecord({"table": name, "rows": rows}) for name, rows in counts[:COUNTS_SHOWN]],
            schema=dg.TableSchema(columns=[dg.TableColumn("table", "string"), dg.TableColumn("rows", "int")]),
        ),
        "summary": dg.MetadataValue.md(summary),
    }
