"""The records an archive run shares between its steps: tables and the rule's tree, the figures it
keeps, and what it says it did.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from psycopg import sql

from ops_pipelines.adapters.postgres import Connection, errors_named
from ops_pipelines.config import ArchiveRule
from ops_pipelines.errors import OpsError

Log = Callable[[str], None]
KEY_HASH = "coalesce(sum(hashtextextended({}, 0)), 0)"  # order-independent checksum of key texts
PURGED = "(purged)"  # the ledger's archive_table for rows a purge rule deleted
DETACHING = "(detaching) "  # prefixes the ledger's archive_table while a partition is between detach and move


class ArchiveError(OpsError):
    """The rule cannot run: a missing table or column, a child without a foreign key, an archive
    table whose columns differ. Raised before any row moves."""


@dataclass(frozen=True)
class Relation:
    """A table by its schema-qualified name."""

    schema: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


@dataclass(frozen=True)
class Table(Relation):
    oid: int
    columns: list[tuple[str, str, bool]]  # (name, type, not null)
    key: tuple[str, ...]  # the primary key's columns in its order (or a unique NOT NULL index's)
    key_source: str = "primary key"
    partitioned: bool = False

    @property
    def key_types(self) -> tuple[str, ...]:
        types = {name: type_ for name, type_, _ in self.columns}
        return tuple(types[c] for c in self.key)

    @property
    def key_columns(self) -> sql.Composable:
        return sql.SQL(", ").join(map(sql.Identifier, self.key))

    @property
    def key_text(self) -> sql.Composable:
        """The key as text, for the checksum: the column's text, or the row value's for a composite key."""
        if len(self.key) == 1:
            return sql.SQL("{}::text").format(sql.Identifier(self.key[0]))
        return sql.SQL("ROW({})::text").format(self.key_columns)


@dataclass(frozen=True)
class Node:
    """One table of the rule's tree; the tree is a list in parent-first order, the rule's table first."""

    table: Table
    parent: int = -1  # index of the parent node in the tree; -1: this is the rule's table
    fk: tuple[str, ...] = ()  # this table's columns referencing the parent's key, in the key's order
    path: str = "table"  # where it is in the rule, for messages: children[0].children[1]


@dataclass
class TableFigures:
    removed: int = 0  # rows deleted from the source
    removed_checksum: int = 0
    archived: int = 0  # those rows' keys found in the archive after the batch
    archived_checksum: int = 0


@dataclass(frozen=True)
class PartitionAction:
    partition: str
    what: str  # detached concurrently, moved | dropped | copied, verified, dropped | would ...
    rows: int
    seconds: float = 0.0


@dataclass
class ArchiveRun:
    rule: str
    cutoff: dt.datetime
    dry_run: bool
    tables: dict[str, TableFigures] = field(default_factory=dict)
    would_move: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    seconds: float = 0.0
    longest_batch_ms: float = 0.0
    why_stopped: str = "done"  # done (nothing left), max_rows or max_runtime
    replica_paused_seconds: float = 0.0  # waited for the replica (replica_dsn, max_replica_lag)
    partitions: list["PartitionAction"] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return all(f.removed == f.archived and f.removed_checksum == f.archived_checksum for f in self.tables.values())

    @property
    def parent_rows(self) -> int:
        return next(iter(self.tables.values())).removed if self.tables else 0


Partition = Relation  # a partition of the rule's table, by name


class Destination(Protocol):
    """Where a rule's rows go (destination.py): the source database's archive schema, or another
    database. Each says how a batch and a whole partition move there, and what an interrupted run
    left to finish."""

    @property
    def locks_every_level(self) -> bool:
        """Whether a batch locks each level's rows (a copy elsewhere needs every row's key)."""
        ...

    def finish_interrupted(self, job: "ArchiveJob") -> None: ...

    def move_partition(self, job: "ArchiveJob", partition: "Relation") -> None: ...

    def move_batch(self, job: "ArchiveJob", keys: list[list[tuple]]) -> None: ...


@dataclass
class ArchiveJob:
    """One run of one rule, as every step of it sees it: instead of the same eight parameters
    passed down each call."""

    rule: ArchiveRule
    tree: list[Node]
    run: ArchiveRun
    source: Connection
    destination: Destination
    run_id: str
    log: Log
    after_copy: Callable[[], None] | None  # tests: called between two commits a crash may fall between
    source_errors: errors_named  # statements on the source, inside the archive's block, name the source

    @property
    def root(self) -> Table:
        return self.tree[0].table
