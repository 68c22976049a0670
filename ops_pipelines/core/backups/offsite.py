"""Copy a complete backup to the off-site store and prove the copy is whole.

The dump streams from the local store to the off-site one (S3 multipart: memory stays at one
part), its sha256 recomputed on the way and stored as object metadata; the manifest goes last,
so off-site too, a backup without a manifest is incomplete. A copy already there with the same
sha256, size and manifest is not sent again — unless `resend` (the last re-read of it failed: an
in-place tamper keeps size and metadata, so only a full re-read finds it, and only a re-send mends it).
"""

import time
from dataclasses import dataclass

from ops_pipelines.adapters.storage import BackupStorage, StorageError
from ops_pipelines.core.backups.catalog import BackupEntry, manifest_key, read_manifest, stamp_of
from ops_pipelines.core.backups.manifest import BackupManifest
from ops_pipelines.core.backups.stored_dump import StoredDump
from ops_pipelines.core.verdict import Verdict
from ops_pipelines.errors import OpsError


@dataclass(frozen=True)
class CopyResult:
    manifest: BackupManifest
    uri: str
    copied_bytes: int
    seconds: float
    already_there: bool


def copy_backup(
    source: BackupStorage, target: BackupStorage, entry: BackupEntry, *, resend: bool = False
) -> CopyResult:
    manifest = read_manifest(source, entry)
    started = time.monotonic()
    existing = target.stat(manifest.dump_key)
    manifest_name = manifest_key(entry.database, entry.stamp)
    if (
        not resend
        and existing
        and existing.sha256 == manifest.sha256
        and existing.bytes == manifest.bytes
        and _same_bytes(source, target, manifest_name)
        and (manifest.globals_key is None or _same_bytes(source, target, manifest.globals_key))
    ):
        return CopyResult(manifest, target.uri(manifest.dump_key), 0, time.monotonic() - started, True)

    dump = StoredDump(source, manifest.dump_key)
    with target.open_write(manifest.dump_key, sha256=manifest.sha256) as out:
        for chunk in dump.stored_chunks():
            out.write(chunk)
        if dump.mismatch(manifest):
            # Raising inside the block aborts the upload: a damaged local file is not sent off-site.
            raise OpsError(f"{source.uri(manifest.dump_key)} no longer matches its manifest: not copied")
    if manifest.globals_key:  # the roles file travels with its dump: an off-site restore needs it too
        target.write_bytes(manifest.globals_key, source.read_bytes(manifest.globals_key))
    target.write_bytes(manifest_name, source.read_bytes(manifest_name))
    return CopyResult(manifest, target.uri(manifest.dump_key), dump.bytes, time.monotonic() - started, False)


def _same_bytes(source: BackupStorage, target: BackupStorage, key: str) -> bool:
    try:
        return target.stat(key) is not None and target.read_bytes(key) == source.read_bytes(key)
    except StorageError:
        return False


def verify_copy(source: BackupStorage, target: BackupStorage, manifest: BackupManifest) -> Verdict:
    """The off-site manifest and roles file exist and equal the local ones; then the dump's size and
    sha256 metadata from the store, then the whole object re-read and hashed."""
    metadata: dict = {"uri": target.uri(manifest.dump_key)}
    try:
        sidecars = [manifest_key(manifest.database, stamp_of(manifest.dump_key))]
        if manifest.globals_key:
            sidecars.append(manifest.globals_key)
        for key in sidecars:
            if target.stat(key) is None:
                return Verdict.fail(f"{target.uri(key)} does not exist: the off-site copy is incomplete")
            if target.read_bytes(key) != source.read_bytes(key):
                return Verdict.fail(f"{target.uri(key)} differs from the local {source.uri(key)}")
        stored = target.stat(manifest.dump_key)
        if stored is None:
            return Verdict.fail(f"{target.uri(manifest.dump_key)} does not exist")
        metadata = {**metadata, "bytes": stored.bytes, "stored_sha256": stored.sha256 or ""}
        if stored.bytes != manifest.bytes:
            return Verdict.fail(f"off-site copy is {stored.bytes} bytes, the manifest says {manifest.bytes}", metadata)
        if stored.sha256 is not None and stored.sha256 != manifest.sha256:
            return Verdict.fail("off-site copy's sha256 metadata differs from the manifest", metadata)
        dump = StoredDump(target, manifest.dump_key).read_all()
    except StorageError as exc:
        return Verdict.fail(str(exc), metadata)
    if dump.mismatch(manifest):
        return Verdict.fail(
            f"off-site copy re-read as sha256 {dump.sha256[:12]}…, {dump.bytes} bytes: damaged", metadata
        )
    return Verdict.ok(
        f"off-site copy re-read: {dump.bytes} bytes, sha256 matches the manifest; manifest equal", metadata
    )
