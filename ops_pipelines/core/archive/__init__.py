"""Archival: move old rows (with the child rows that reference them) to an archive, in batches,
losing nothing. The anchor is Percona's pt-archiver: small batches, a commit per batch, a dry run,
figures per run, and no long locks.

A rule is a tree of tables: the rule's table, its `children` (rows referencing it), their own
`children` (order -> shipment -> shipment_line), each joined to its parent by a foreign key. Keys may
be composite: a table's key is its primary key, or else its narrowest unique index on NOT NULL
columns; a table with neither is refused. Each batch locks the parent rows (keyset pagination on the
key's row value, `(a, b) > (x, y)`, never OFFSET), then each level's rows that reference the level
above, parent-first, all `FOR UPDATE`, so nothing can change or reference them while they move; rows
then move leaf-first:

- same database: each table `WITH moved AS (DELETE … RETURNING *) INSERT …`, in one transaction;
- another database: the locked rows are copied into the archive and committed there first
  (`ON CONFLICT` on the primary key, so a re-run after a crash neither duplicates nor loses),
  then deleted at the source. A crash between the two commits leaves the rows in both places;
  the next run copies nothing new and deletes them.

Every batch records what it added in `<archive schema>.ops_archive_ledger`, in the archive's own
transaction; `verify_archive` compares the ledger with the archive tables (count and an
order-independent checksum of the whole key), so a row removed behind our back shows.
"""

from ops_pipelines.core.archive.model import ArchiveError, ArchiveRun, PartitionAction, TableFigures
from ops_pipelines.core.archive.run import run_archive
from ops_pipelines.core.archive.tree import inspect_rule, read_table
from ops_pipelines.core.archive.verify import verify_archive

__all__ = [
    "ArchiveError",
    "ArchiveRun",
    "PartitionAction",
    "TableFigures",
    "inspect_rule",
    "read_table",
    "run_archive",
    "verify_archive",
]
