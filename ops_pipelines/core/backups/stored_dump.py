"""One pass over a stored dump: the sha256 and size of the stored (zstd) bytes, and, when asked, the
decompressed pg_dump archive piece by piece. The checksum check, `pg_restore --list`, the restore
test and the off-site copy all read dumps through this, so "intact" means the same everywhere.
"""

import hashlib
from collections.abc import Iterator

import zstandard

from ops_pipelines.adapters.storage import BackupStorage, StorageError
from ops_pipelines.adapters.storage.base import iter_chunks
from ops_pipelines.core.backups.manifest import BackupManifest


class DumpDamaged(StorageError):
    """The stored bytes are not a valid zstd stream (damaged, or not a dump at all)."""


class StoredDump:
    def __init__(self, storage: BackupStorage, key: str) -> None:
        self.storage = storage
        self.key = key
        self._digest = hashlib.sha256()
        self.bytes = 0  # stored bytes read so far
        self.decompressed_bytes = 0
        self.frame_complete = False  # the zstd frame ended (only known when decompressing)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def stored_chunks(self) -> Iterator[bytes]:
        """The stored bytes as they are, hashed and counted on the way."""
        with self.storage.open_read(self.key) as stream:
            for chunk in iter_chunks(stream):
                self._digest.update(chunk)
                self.bytes += len(chunk)
                yield chunk

    def decompressed(self) -> Iterator[bytes]:
        """The pg_dump archive, decompressed; the stored bytes are hashed and counted too."""
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        for chunk in self.stored_chunks():
            try:
                piece = decompressor.decompress(chunk)
            except zstandard.ZstdError as exc:
                raise DumpDamaged(f"{self.key} is not a valid zstd stream: {exc}") from None
            if piece:
                self.decompressed_bytes += len(piece)
                yield piece
        self.frame_complete = decompressor.eof

    def mismatch(self, manifest: BackupManifest) -> str | None:
        """After a full read: what differs from the manifest (truncated, replaced, frame cut short), or None."""
        if self.bytes != manifest.bytes:
            return f"{self.key} is {self.bytes} bytes, the manifest says {manifest.bytes} (truncated or replaced)"
        if self.sha256 != manifest.sha256:
            return f"{self.key} sha256 {self.sha256[:12]}… does not match the manifest's {manifest.sha256[:12]}…"
        return None

    def read_all(self) -> "StoredDump":
        """Hash the whole stored object without keeping it."""
        for _ in self.stored_chunks():
            pass
        return self
