"""pg_dump: the custom-format dump of one database, streamed to the caller (which compresses and
hashes it on the way to the store)."""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.commands import Streaming, ToolConnection
from ops_pipelines.adapters.programs.version import Version, at_least
from ops_pipelines.errors import CommandFailed


@dataclass(frozen=True)
class PgDump:
    path: Path
    version: Version

    @property
    def bin_dir(self) -> Path:
        """Where its sibling programs (pg_dumpall) of the same version are."""
        return self.path.parent


def for_server(server_major: int, bin_dir: Path | None = None) -> PgDump:
    """A pg_dump at least as new as the server (an older one refuses to dump it)."""
    try:
        path, version = at_least("pg_dump", server_major, bin_dir)
    except CommandFailed as exc:
        raise CommandFailed(f"{exc}: install postgresql-client-{server_major}") from None
    return PgDump(path, version)


@contextlib.contextmanager
def dump_custom(
    pg_dump: PgDump, connection: ToolConnection, *, snapshot: str, lock_wait_timeout_ms: int
) -> Iterator[Streaming]:
    """Dump in the custom format, uncompressed (the caller compresses), from the exported `snapshot`
    so the dump sees what the caller's row counts see. The caller reads `stdout_fd`, then `wait`s."""
    args = [
        pg_dump.path,
        "--format=custom",
        "--compress=0",
        f"--snapshot={snapshot}",
        "--no-password",
        # never queue behind an exclusive lock (and make the ERP queue behind us)
        f"--lock-wait-timeout={lock_wait_timeout_ms}",
        f"--dbname={connection.dbname}",
    ]
    with commands.streaming(args, env=connection.env) as stream:
        yield stream
