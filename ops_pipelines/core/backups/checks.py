"""What makes a backup trustworthy: fresh, intact, readable by pg_restore, of a plausible size.

Each function returns a `Verdict`; the asset checks turn it into a Dagster check result. A bad
backup is an error; a suspicious one (much smaller than usual) is a warning.
"""

import datetime as dt
import statistics
from pathlib import Path

from ops_pipelines.adapters.programs import pg_restore
from ops_pipelines.adapters.storage import BackupStorage, StorageError
from ops_pipelines.core.backups.catalog import BackupEntry, read_manifest, stamp_time
from ops_pipelines.core.backups.manifest import BackupManifest, ManifestError
from ops_pipelines.core.backups.stored_dump import StoredDump
from ops_pipelines.core.verdict import Verdict
from ops_pipelines.errors import CommandFailed
from ops_pipelines.units import format_bytes

SIZE_HISTORY = 7  # backups the size check compares against
SIZE_MIN_RATIO = 0.5


def freshness(newest_stamp: str | None, max_age_hours: float, now: dt.datetime) -> Verdict:
    """`newest_stamp`: of the newest complete backup (`newest_complete_stamp`), or None."""
    if newest_stamp is None:
        return Verdict.fail("no complete backup (dump + manifest) exists")
    age_hours = (now - stamp_time(newest_stamp)).total_seconds() / 3600
    metadata = {"newest_backup": newest_stamp, "age_hours": round(age_hours, 2), "max_age_hours": max_age_hours}
    if age_hours > max_age_hours:
        return Verdict.fail(
            f"newest complete backup {newest_stamp} is {age_hours:.1f} h old (limit {max_age_hours:g} h)",
            metadata,
        )
    return Verdict.ok(f"newest complete backup {newest_stamp} is {age_hours:.1f} h old", metadata)


def orphan_dumps(entries: list[BackupEntry]) -> list[str]:
    """Stamps of dumps without a manifest that are newer than the newest complete backup: backups
    that did not complete. The checks judge the newest *complete* backup, and must say so."""
    complete = [e.stamp for e in entries if e.complete]
    newest = max(complete) if complete else ""
    return [e.stamp for e in entries if e.dump is not None and e.manifest is None and e.stamp > newest]


def noting_orphans(verdict: Verdict, orphans: list[str], in_progress: bool) -> Verdict:
    """`verdict` on the newest complete backup, with a warning when newer dumps have no manifest.
    While a backup is running its dump may be renamed a moment before its manifest is written:
    that is not an orphan."""
    if not orphans or in_progress:
        return verdict
    judged = verdict.metadata.get("backup") or verdict.metadata.get("newest_backup") or "the newest complete backup"
    note = (
        f"newer dump {orphans[-1]} has no manifest (a backup that did not complete; remove it or look at "
        f"that run), so this check judged {judged}"
    )
    metadata = {**verdict.metadata, "orphan_dumps": ", ".join(orphans)}
    if not verdict.passed:
        return Verdict(False, verdict.warning_only, f"{verdict.description}; {note}", metadata)
    return Verdict.warn(f"{verdict.description}; but {note}", metadata)


def checksum(storage: BackupStorage, entry: BackupEntry) -> Verdict:
    """Re-read the whole dump and compare its sha256 and size with the manifest."""
    try:
        manifest = read_manifest(storage, entry)
        dump = StoredDump(storage, manifest.dump_key).read_all()
    except (ManifestError, StorageError) as exc:
        return Verdict.fail(str(exc))
    metadata = {"backup": entry.stamp, "sha256": dump.sha256, "bytes": dump.bytes, "manifest_bytes": manifest.bytes}
    problem = dump.mismatch(manifest)
    if problem:
        return Verdict.fail(problem, metadata)
    return Verdict.ok(f"sha256 and size ({format_bytes(dump.bytes)}) match the manifest", metadata)


def readable(storage: BackupStorage, entry: BackupEntry, bin_dir: Path | None = None) -> Verdict:
    """Decompress the whole dump into `pg_restore --list`: the archive's catalogue must be readable,
    the zstd frame complete, and the decompressed size what pg_dump wrote."""
    try:
        manifest = read_manifest(storage, entry)
        table_data, dumped = _list_archive(storage, manifest, bin_dir)
    except (ManifestError, StorageError, CommandFailed) as exc:
        return Verdict.fail(str(exc))
    metadata = {"backup": entry.stamp, "table_data_entries": len(table_data), "decompressed_bytes": dumped}
    if dumped != manifest.dump_bytes:
        return Verdict.fail(f"decompressed to {dumped} bytes, pg_dump wrote {manifest.dump_bytes}", metadata)
    if manifest.counted == "all" and len(table_data) < len(manifest.table_counts):
        return Verdict.fail(
            f"pg_restore lists data for {len(table_data)} tables, the manifest counted {len(manifest.table_counts)}",
            metadata,
        )
    return Verdict.ok(f"pg_restore reads the catalogue: {len(table_data)} tables with data", metadata)


def _list_archive(
    storage: BackupStorage, manifest: BackupManifest, bin_dir: Path | None
) -> tuple[list[pg_restore.TocEntry], int]:
    program = pg_restore.find(bin_dir, min_major=manifest.server_major)
    dump = StoredDump(storage, manifest.dump_key)
    with pg_restore.catalogue_of_stdin(program) as listing:
        stdin_open = True
        for piece in dump.decompressed():
            if stdin_open:
                try:
                    listing.stdin.write(piece)
                except BrokenPipeError:  # pg_restore read the catalogue and stopped reading: fine
                    stdin_open = False
        if stdin_open:
            listing.stdin.close()
        returncode = listing.wait(timeout=600)
        if returncode != 0:
            raise CommandFailed(listing.failure(returncode).replace("pg_restore", "pg_restore --list", 1))
    if not dump.frame_complete:
        raise StorageError(f"{manifest.dump_key} ends before its zstd frame does (truncated)")
    catalogue = pg_restore.parse_catalogue(listing.collected_stdout.decode("utf-8", "replace"))
    return [entry for entry in catalogue if entry.is_table_data], dump.decompressed_bytes


def size_sane(storage: BackupStorage, entries: list[BackupEntry]) -> Verdict:
    """Warn when the newest backup is less than half the median of the previous seven."""
    complete = [e for e in entries if e.complete]
    if not complete:
        return Verdict.fail("no complete backup to judge")
    newest, previous = complete[-1], complete[-SIZE_HISTORY - 1 : -1]
    size = _dump_bytes(newest)
    if len(previous) < 2:
        return Verdict(
            True,
            True,
            f"{format_bytes(size)}; too little history to compare ({len(previous)} earlier backups)",
            {"bytes": size},
        )
    median = statistics.median(_dump_bytes(e) for e in previous)
    ratio = size / median if median else 1.0
    metadata = {
        "bytes": size,
        "median_of_previous": int(median),
        "ratio": round(ratio, 3),
        "compared_with": len(previous),
    }
    if ratio < SIZE_MIN_RATIO:
        return Verdict.warn(
            f"{format_bytes(size)} is {ratio:.0%} of the median of the last {len(previous)} ({format_bytes(median)})",
            metadata,
        )
    return Verdict.ok(
        f"{format_bytes(size)}, {ratio:.0%} of the median of the last {len(previous)}", metadata, warning_only=True
    )


def _dump_bytes(entry: BackupEntry) -> int:
    return entry.dump.bytes if entry.dump is not None else 0  # complete entries always have one
