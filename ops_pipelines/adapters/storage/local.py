"""Backups in a local directory: `<root>/<db>/<stamp>.dump.zst` and its manifest.

Writes go to a hidden temporary name of their own in the same directory (`.<name>.<pid>-<random>
.partial`), are fsynced, renamed, and the directory fsynced; listings skip hidden names, so a
half-written file is never seen as a backup. A writer holds an exclusive `flock` on its temporary
file until the rename: the lock dies with its process, so `remove_partials` can tell a file whose
writer is gone (removed) from one still being written (left alone), on this host or another one
sharing the volume.

Everything the store creates is private: files 0600, directories 0700 (a dump holds the whole
ERP database).
"""

import contextlib
import datetime as dt
import errno
import fcntl
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ops_pipelines.adapters.storage.base import BackupStorage, StorageError, StoredObject, Writer
from ops_pipelines.files import PRIVATE_FILE, fsync_dir, lock_held, make_private_dirs

PARTIAL_SUFFIX = ".partial"
FILE_MODE = PRIVATE_FILE
_LOCK_SUFFIX = ".lock"


class StoreLocked(StorageError):
    """Another process holds the store's lock for this work (see `LocalStorage.exclusive`)."""


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
            found.append(StoredObject(key, info.st_size, dt.datetime.fromtimestamp(info.st_mtime, dt.UTC)))
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
        return StoredObject(key, info.st_size, dt.datetime.fromtimestamp(info.st_mtime, dt.UTC))

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
        try:
            make_private_dirs(final.parent)
            tmp, handle = _create_locked_partial(final)
        except OSError as exc:
            raise StorageError(f"cannot write {final}: {exc.strerror}") from None
        try:
            with handle:  # closing it releases the lock, after the rename
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
        """Delete the temporary files in `directory` whose writer is provably gone: their lock is free.
        A file still locked belongs to a live writer (another run) and is left alone."""
        base = self.root / directory
        removed = []
        for path in sorted(base.glob(f".*{PARTIAL_SUFFIX}")) if base.exists() else []:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # its writer finished meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                path.unlink(missing_ok=True)
                removed.append(path.name)
            finally:
                os.close(fd)
        return removed

    @contextlib.contextmanager
    def exclusive(self, directory: str, purpose: str) -> Iterator[None]:
        """Hold `<root>/<directory>/.<purpose>.lock` exclusively for the block, or raise `StoreLocked`
        at once naming the holder. An flock: released by the kernel when its holder dies, whatever kills
        it, so a crashed run never leaves the store locked. The lock file itself is never deleted
        (deleting it would let two processes lock two different files)."""
        folder = self.root / directory
        path = folder / f".{purpose}{_LOCK_SUFFIX}"
        try:
            make_private_dirs(folder)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            raise StorageError(f"cannot open the lock {path}: {exc.strerror}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                raise StoreLocked(f"{purpose} of {directory} is already running ({holder}; lock {path})") from None
            since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock

    def is_locked(self, directory: str, purpose: str) -> bool:
        """Is the `exclusive(directory, purpose)` lock held by a live process right now?"""
        return lock_held(self.root / directory / f".{purpose}{_LOCK_SUFFIX}")


def _create_locked_partial(final: Path) -> tuple[Path, BinaryIO]:
    """A new temporary file for `final`, private (0600) and flock'ed by us. Between creating and
    locking it, a `remove_partials` elsewhere could take the free lock and unlink it: we check that
    the name still points at our file once we hold the lock, and start again if it does not."""
    while True:
        tmp = final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}{PARTIAL_SUFFIX}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.stat(tmp).st_ino == os.fstat(fd).st_ino:
                return tmp, os.fdopen(fd, "wb")
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _size(path: Path) -> str:
    try:
        return f"{path.stat().st_size} bytes"
    except OSError:
        return "an unknown number of bytes"
