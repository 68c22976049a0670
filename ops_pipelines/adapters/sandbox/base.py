"""A restore sandbox: an empty database, on a server new enough for the dump, that exists only
for the duration of a `with` block and is removed afterwards, whatever happens inside."""

import abc
import contextlib
from dataclasses import dataclass
from pathlib import Path

from ops_pipelines.errors import OpsError


class SandboxError(OpsError):
    """The sandbox could not be made ready (no suitable server version, engine unreachable ...)."""


@dataclass(frozen=True)
class RestoreTarget:
    dsn: str  # an empty database to restore into, as a superuser
    pg_bin_dir: Path | None  # where a pg_restore for this server is (None: the newest installed)
    description: str  # for metadata: "local cluster PostgreSQL 15 on port 54321"


class RestoreSandbox(abc.ABC):
    kind: str

    @abc.abstractmethod
    def open(self, min_major: int) -> contextlib.AbstractContextManager[RestoreTarget]:
        """An empty database on PostgreSQL `min_major` or newer, removed when the block ends."""
