"""Which off-site backup to believe. S3 is storage others may write to: a name there proves nothing.

An off-site backup is believed when this instance's own records vouch for it, in this order:

1. the local store holds its manifest: the S3 manifest must name itself and equal it, and the
   local manifest (not S3's) is what the dump is checked against;
2. the event log holds an `offsite_copy` of it: the S3 manifest must name itself and carry the
   sha256 that copy recorded;
3. OPS_PIPELINES_BACKUP_HMAC_KEY is set and the S3 manifest's signature is valid.

Anything else — a planted pair, a copy of another backup's manifest, a stamp in the future — is
skipped and named, never drilled, never ranked newest. A believed backup whose S3 manifest does not
match the record is chosen *with its problem*: the drill then fails on it, it does not quietly move
on to an older one.
"""

from dataclasses import dataclass, field

from ops_pipelines.adapters.storage import BackupStorage, StorageError
from ops_pipelines.core.backups.catalog import BackupEntry, list_backups, read_manifest
from ops_pipelines.core.backups.manifest import BackupManifest, ManifestError
from ops_pipelines.core.backups.signing import KEY_ENV, signing_key


@dataclass(frozen=True)
class OffsiteChoice:
    entry: BackupEntry | None  # the newest off-site backup this instance vouches for
    manifest: BackupManifest | None  # what its dump must match (from this instance's records)
    problem: str | None = None  # its S3 objects do not match that record: the drill fails on it
    skipped: list[str] = field(default_factory=list)  # newer entries not believed, and why


def choose_offsite(
    offsite: BackupStorage, local: BackupStorage, database: str, recorded: dict[str, str]
) -> OffsiteChoice:
    """`recorded`: stamp -> sha256 of the copies the event log holds (empty without an instance)."""
    entries = list_backups(offsite, database)
    skipped = [f"off-site {e.stamp}: {e.refused}" for e in reversed(entries) if e.refused]
    try:
        held = {e.stamp: e for e in list_backups(local, database) if e.complete}
    except StorageError:
        held = {}  # the local store may be gone (the disaster this drill rehearses)
    for entry in reversed([e for e in entries if e.complete]):
        where = offsite.uri(entry.manifest.key) if entry.manifest else entry.stamp
        if entry.stamp in held:
            try:
                trusted = read_manifest(local, held[entry.stamp])
            except ManifestError as exc:
                skipped.append(f"off-site {entry.stamp}: its local manifest is unreadable ({exc})")
                continue
            return OffsiteChoice(entry, trusted, offsite_manifest_problem(offsite, entry, trusted), skipped)
        if entry.stamp in recorded:
            try:
                found = read_manifest(offsite, entry)
            except ManifestError as exc:
                skipped.append(f"off-site {entry.stamp}: {exc}")
                continue
            sha = recorded[entry.stamp]
            if sha and found.sha256 != sha:
                problem = f"{where} names sha256 {found.sha256[:12]}…, but this instance copied {sha[:12]}…: refused"
                return OffsiteChoice(entry, found, problem, skipped)
            return OffsiteChoice(entry, found, None, skipped)
        if signing_key() is not None:
            try:
                return OffsiteChoice(entry, read_manifest(offsite, entry), None, skipped)
            except ManifestError as exc:
                skipped.append(f"off-site {entry.stamp}: {exc}")
                continue
        skipped.append(
            f"off-site {entry.stamp}: not recorded by this instance (no local manifest, no offsite_copy of it in "
            f"the event log, no {KEY_ENV} signature): not believed"
        )
    return OffsiteChoice(None, None, None, skipped)


def offsite_manifest_problem(offsite: BackupStorage, entry: BackupEntry, trusted: BackupManifest) -> str | None:
    """Why the S3 manifest of `entry` may not stand beside this instance's `trusted` one, or None."""
    where = offsite.uri(entry.manifest.key) if entry.manifest else entry.stamp
    try:
        found = read_manifest(offsite, entry)
    except ManifestError as exc:
        return str(exc)
    if found != trusted:
        return f"{where} differs from this instance's manifest of backup {entry.stamp} (the local store): refused"
    return None
