"""Restore into a throwaway cluster: initdb in a temporary directory, settings for a disposable
target (no fsync, minimal WAL), stopped and deleted afterwards. As root, the server runs as the
`postgres` OS user with that user's groups only.

Nobody else can reach it: it listens on no TCP port, only on a Unix socket inside its own 0700
directory, and every connection needs a random scram-sha-256 password that only this process
knows. A watchdog process stops and deletes it the moment its owner dies, even by SIGKILL, so a
killed restore test leaves no server running. What a crash of the whole machine leaves behind is
removed by the next restore test — only directories whose owner is provably gone (see `owned`)."""

import contextlib
import fcntl
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.cluster import LocalCluster, free_port, server_os_user
from ops_pipelines.adapters.postgres import connect, with_dbname
from ops_pipelines.adapters.programs.pg_server import PgServer
from ops_pipelines.adapters.sandbox.base import RestoreSandbox, RestoreTarget, SandboxError
from ops_pipelines.adapters.sandbox.watchdog import Watchdog
from ops_pipelines.errors import CommandFailed
from ops_pipelines.files import lock_held

PREFIX = "ops_restore_"
_OWNER_LOCK = ".owner.lock"
_LABEL_CHARS = 24  # keeps the socket's path under the 107 bytes a Unix socket name may have
_UNOWNED_GRACE_SECONDS = 300  # a directory without an owner lock may be one being created right now

# Nothing here needs to survive a crash: trade durability for restore speed.
DISPOSABLE_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "'8GB'",
    "checkpoint_timeout": "'1h'",
    "autovacuum": "off",
    "maintenance_work_mem": "'512MB'",
    # pg_restore --jobs already keeps the cores busy: parallel index builds on top of it only contend
    # (bench/RESULTS.md: 13.9 s -> 12.5 s for pg_restore of the scale-50 sample, 2 jobs, 2 cores)
    "max_parallel_maintenance_workers": "0",
    "work_mem": "'256MB'",  # the foreign-key checks' hash joins stay in memory
    "shared_buffers": "'256MB'",
    "max_connections": "20",
}


@contextlib.contextmanager
def owned(database: str, purpose: str) -> Iterator[Path]:
    """A new private temporary directory for one restore test, flock'ed by this process for as long
    as the block runs: `remove_leftovers` removes a directory only when that lock is free, i.e. when
    its owner is gone, so one restore test never deletes another's (CLI runs ignore Dagster's pools)."""
    parent = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{database[:_LABEL_CHARS]}-{purpose}-"))
    fd = os.open(parent / _OWNER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield parent
    finally:
        os.close(fd)
        shutil.rmtree(parent, ignore_errors=True)


class LocalClusterSandbox(RestoreSandbox):
    kind = "local_cluster"

    def __init__(self, bin_dir: Path | None = None, label: str = "db") -> None:
        self.bin_dir = bin_dir
        self.label = label

    def binaries_for(self, min_major: int) -> tuple[Path, int]:
        directory = self.bin_dir or commands.pg_bin_dir(min_major=min_major)
        if directory is None:
            raise SandboxError(
                f"no PostgreSQL server of version {min_major} or newer is installed to restore this "
                f"dump: install postgresql-{min_major} or set restore_test.bin_dir"
            )
        try:
            major = PgServer(directory).version().major
        except CommandFailed as exc:
            raise SandboxError(f"restore_test.bin_dir {directory}: {exc}") from None
        if major < min_major:
            raise SandboxError(f"{directory} holds PostgreSQL {major}, older than the dump's server ({min_major})")
        return directory, major

    @contextlib.contextmanager
    def open(self, min_major: int) -> Iterator[RestoreTarget]:
        directory, major = self.binaries_for(min_major)
        with owned(self.label, "cluster") as parent:
            user = server_os_user()
            if user:
                shutil.chown(parent, user, user)  # the server's socket lives here, 0700
            cluster = LocalCluster(
                data_dir=parent / "data",
                port=free_port(),
                bin_dir=directory,
                settings=DISPOSABLE_SETTINGS,
                socket_dir=parent,
                password=secrets.token_urlsafe(24),
                from_template=True,  # a copy of a cached initdb: about a second sooner
            )
            watchdog = Watchdog(cluster.data_dir, parent, directory)
            try:
                cluster.init()
                cluster.start()
                with connect(cluster.dsn(), autocommit=True, purpose="restore_test") as conn:
                    # FILE_COPY (15+): a copy of template1's files, not its pages through the WAL; faster here
                    strategy = " STRATEGY FILE_COPY" if major >= 15 else ""
                    conn.execute(f"CREATE DATABASE restore_target{strategy}")
                yield RestoreTarget(
                    with_dbname(cluster.dsn(), "restore_target"),
                    directory,
                    f"local cluster PostgreSQL {major} (Unix socket only, {parent})",
                )
            finally:
                try:
                    cluster.remove()
                finally:
                    watchdog.release()


def remove_leftovers() -> list[Path]:
    """Stop and delete what a restore test that could not clean up left (the machine crashed, the
    watchdog was killed too): sandbox clusters and decompressed dumps whose owner is gone — their
    owner lock is free. A directory whose lock is held belongs to a restore test still running."""
    removed = []
    for parent in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            if not parent.is_dir() or _owner_alive(parent):
                continue
        except OSError:  # another OS user's sandbox (its directory is 0700): not ours to judge
            continue
        if (parent / "data" / "PG_VERSION").exists():
            with contextlib.suppress(Exception):
                LocalCluster(data_dir=parent / "data", port=0).stop()
        shutil.rmtree(parent, ignore_errors=True)
        removed.append(parent)
    return removed


def _owner_alive(parent: Path) -> bool:
    if not (parent / _OWNER_LOCK).exists():  # made by an older version, or being made this instant
        with contextlib.suppress(OSError):
            return time.time() - parent.stat().st_mtime < _UNOWNED_GRACE_SECONDS
        return False
    return lock_held(parent / _OWNER_LOCK)
