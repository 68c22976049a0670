"""Backups in a local directory: `<root>/<db>/<stamp>.dump.zst` and its manifest.

Writes go to a hidden temporary name in the same directory, are fsynced, renamed, and the
directory fsynced; listings skip hidden names, so a half-written file is never seen as a backup.
"""

import contextlib
import datetime as dt
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ops_pipelines.files import fsync_dir
from ops_pipelines.resources.storage.base import BackupStorage, StorageError, StoredObject, Writer

PARTIAL_SUFFIX = ".partial"


class LocalStorage(BackupStorage):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.description = f"local:{self.root}"

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise StorageError(f"key {key!r} points outside {self.root}")
        return path

    def uri(self, key: str) -> str:
        return str(self.path(key))

    def list_objects(self, prefix: str) -> list[StoredObject]:
        found = []
        for key, entry in self._entries(prefix):
            info = entry.stat()
            found.append(StoredObject(key, info.st_size, dt.datetime.fromtimestamp(info.st_mtime, dt.timezone.utc)))
        return sorted(found, key=lambda o: o.key)

    def list_names(self, prefix: str) -> list[str]:
        return sorted(key for key, _ in self._entries(prefix))  # no stat per file: sensors use this

    def _entries(self, prefix: str) -> Iterator[tuple[str, os.DirEntry]]:
        """Visible regular files whose key starts with `prefix` (hidden names are writes in progress)."""
        directory, _, name_prefix = prefix.rpartition("/")
        base = self.root / directory if directory else self.root
        try:
            entries = list(os.scandir(base))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot list {base}: {exc.strerror}") from None
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.startswith(name_prefix) or not entry.is_file():
                continue
            yield (f"{directory}/{entry.name}" if directory else entry.name), entry

    def stat(self, key: str) -> StoredObject | None:
        try:
            info = self.path(key).stat()
        except FileNotFoundError:
            return None
        return StoredObject(key, info.st_size, dt.datetime.fromtimestamp(info.st_mtime, dt.timezone.utc))

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        try:
            handle = self.path(key).open("rb")
        except OSError as exc:
            raise StorageError(f"cannot read {self.path(key)}: {exc.strerror}") from None
        with handle:
            yield handle

    @contextlib.contextmanager
    def open_write(self, key: str, sha256: str | None = None) -> Iterator[Writer]:
        final = self.path(key)
        tmp = final.with_name(f".{final.name}{PARTIAL_SUFFIX}")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            handle = tmp.open("wb")
        except OSError as exc:
            raise StorageError(f"cannot write {final}: {exc.strerror}") from None
        try:
            with handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
            fsync_dir(final.parent)
        except OSError as exc:
            written = f" after {_size(tmp)}" if exc.errno == errno.ENOSPC else ""
            tmp.unlink(missing_ok=True)
            raise StorageError(f"cannot write {final}{written}: {exc.strerror}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {path}: {exc.strerror}") from None
        fsync_dir(path.parent)

    def remove_partials(self, directory: str) -> list[str]:
        """Delete temporary files a killed run left in `directory` (one writer per database)."""
        base = self.root / directory
        removed = []
        for path in base.glob(f".*{PARTIAL_SUFFIX}") if base.exists() else []:
            path.unlink(missing_ok=True)
            removed.append(path.name)
        return removed


def _size(path: Path) -> str:
    try:
        return f"{path.stat().st_size} bytes"
    except OSError:
        return "an unknown number of bytes"
