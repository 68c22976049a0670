"""The interface every backup store offers: list, read, write atomically, delete.

Keys are `/`-separated relative names like `erp_prod/20261122T020000Z.dump.zst`. A write is all
or nothing: `open_write` yields a writer, and the object appears under its key only when the
`with` block ends without an exception; otherwise nothing is left behind.
"""

import abc
import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from ops_pipelines.errors import OpsError

CHUNK_BYTES = 1024 * 1024


class StorageError(OpsError):
    """A store refused a read, write, listing or deletion; the message says which and why."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    bytes: int
    modified: dt.datetime
    sha256: str | None = None  # when the store keeps it beside the object (S3 metadata)


class Writer(Protocol):
    def write(self, data: bytes, /) -> int: ...


class BackupStorage(abc.ABC):
    #: `local:/var/backups/ops_pipelines` or `s3://bucket/prefix/`: for logs and metadata.
    description: str
    #: Whether what the store holds is this instance's own record. The local store is; S3 is not:
    #: others may write to a bucket, so what is read from it is checked against names, checksums,
    #: the local store and (when set) the HMAC key before it is believed (core/backups/catalog.py).
    trusted: bool = True

    @abc.abstractmethod
    def list_objects(self, prefix: str) -> list[StoredObject]:
        """Every complete object whose key starts with `prefix`, in key order."""

    def list_names(self, prefix: str) -> list[str]:
        """Just the keys under `prefix`: cheaper where sizes and dates cost a call each."""
        return [obj.key for obj in self.list_objects(prefix)]

    @abc.abstractmethod
    def stat(self, key: str) -> StoredObject | None:
        """The object under `key`, or None when there is none."""

    @abc.abstractmethod
    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A binary stream of the object (read it in chunks: objects can be large)."""

    @abc.abstractmethod
    def open_write(self, key: str, sha256: str | None = None) -> contextlib.AbstractContextManager[Writer]:
        """Write an object atomically; `sha256`, when known in advance, is stored beside it."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""

    @abc.abstractmethod
    def uri(self, key: str) -> str:
        """Where a person finds the object: a path or an s3:// URI."""

    def browser_link(self, key: str, seconds: int) -> str | None:
        """A URL a browser opens for `seconds` without credentials, or None where there is none
        (a local file is not reachable from the UI's browser)."""
        return None

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as stream:
            return stream.read()

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_write(key) as writer:
            writer.write(data)


def iter_chunks(stream: BinaryIO, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
