"""Restore into a throwaway cluster: initdb in a temporary directory, settings for a disposable
target (no fsync, minimal WAL), stopped and deleted afterwards. As root, the server runs as the
`postgres` OS user. Directories a killed run left behind are cleaned up by the next restore."""

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ops_pipelines.errors import CommandFailed
from ops_pipelines.resources import commands
from ops_pipelines.resources.cluster import LocalCluster
from ops_pipelines.resources.postgres import connect, with_dbname
from ops_pipelines.resources.sandbox.base import RestoreSandbox, RestoreTarget, SandboxError

PREFIX = "ops_restore_"


def scratch_prefix(database: str, purpose: str) -> str:
    """Temporary directory names of one database's restore tests. `-` cannot occur in a database
    name, so `erp` never matches `erp_prod`'s directories."""
    return f"{PREFIX}{database}-{purpose}-"
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
    "shared_buffers": "'256MB'",
    "max_connections": "20",
}


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
            output = commands.run([commands.find_program("postgres", directory), "--version"], timeout=30).stdout
        except CommandFailed as exc:
            raise SandboxError(f"restore_test.bin_dir {directory}: {exc}") from None
        major = int(output.split()[-1].split(".")[0])
        if major < min_major:
            raise SandboxError(f"{directory} holds PostgreSQL {major}, older than the dump's server ({min_major})")
        return directory, major

    @contextlib.contextmanager
    def open(self, min_major: int) -> Iterator[RestoreTarget]:
        directory, major = self.binaries_for(min_major)
        cluster = LocalCluster.temporary(prefix=scratch_prefix(self.label, "cluster"), bin_dir=directory,
                                         settings=DISPOSABLE_SETTINGS)
        try:
            cluster.init()
            cluster.start()
            with connect(cluster.dsn(), autocommit=True) as conn:
                conn.execute("CREATE DATABASE restore_target")
            yield RestoreTarget(with_dbname(cluster.dsn(), "restore_target"), directory,
                                f"local cluster PostgreSQL {major} on port {cluster.port}")
        finally:
            cluster.remove()


def remove_leftovers(database: str) -> list[Path]:
    """Stop and delete what a killed restore test of `database` could not remove: sandbox
    clusters and decompressed dumps. Safe because one database's heavy runs never overlap."""
    removed = []
    for parent in Path(tempfile.gettempdir()).glob(f"{PREFIX}{database}-*"):
        if (parent / "data" / "PG_VERSION").exists():
            with contextlib.suppress(Exception):
                LocalCluster(data_dir=parent / "data", port=0).stop()
        shutil.rmtree(parent, ignore_errors=True)
        removed.append(parent)
    return removed
