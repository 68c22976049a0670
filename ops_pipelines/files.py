"""Atomic file writes: a temporary name in the same directory, fsync, rename, fsync the directory.

A reader (or a crash) sees the old file or the new one, never half of one. Files are private by
default (0600) and missing directories are made 0700: what we write (reports, charts, state) names
databases, tables and accounts. A caller that means another reader passes `mode`.
"""

import fcntl
import os
import tempfile
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def atomic_write_bytes(path: Path, data: bytes, mode: int = PRIVATE_FILE) -> None:
    path = Path(path)
    make_private_dirs(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, mode: int = PRIVATE_FILE) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode)


def make_private_dirs(directory: Path) -> None:
    """`mkdir -p` whose new directories are 0700 (`Path.mkdir(parents=True)` makes the parents with
    the umask's mode)."""
    missing = []
    for path in [Path(directory), *Path(directory).parents]:
        if path.exists():
            break
        missing.append(path)
    for path in reversed(missing):
        try:
            path.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            pass


def lock_held(path: Path) -> bool:
    """Does a live process hold an `flock` on `path` right now? (False when there is no such file.)
    An flock dies with its process, however it dies: this is how we tell a live owner from a gone one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
