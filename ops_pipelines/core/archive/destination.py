"""The two destinations of a rule: the source database's own archive schema (where a purge also
runs: it keeps no copy), or another database (`destination.dsn`)."""

from dataclasses import dataclass

from ops_pipelines.adapters.postgres import Connection
from ops_pipelines.core.archive.batches import move_across, move_same_database
from ops_pipelines.core.archive.model import ArchiveJob, Relation
from ops_pipelines.core.archive.partitions import finish_detached, partition_across, partition_same_database


@dataclass(frozen=True)
class SameDatabase:
    """Rows move with `DELETE … RETURNING` into the archive schema in one transaction per batch;
    partitions detach and change schema. Only the rule's rows are locked: a new row referencing one
    waits for the batch's commit and then fails its foreign key, so none is left behind."""

    locks_every_level: bool = False

    def finish_interrupted(self, job: ArchiveJob) -> None:
        finish_detached(job)  # partitions a killed run detached but did not move yet

    def move_partition(self, job: ArchiveJob, partition: Relation) -> None:
        partition_same_database(job, partition)

    def move_batch(self, job: ArchiveJob, keys: list[list[tuple]]) -> None:
        move_same_database(job, keys[0])


@dataclass(frozen=True)
class OtherDatabase:
    """Rows are copied and committed in `archive` first, then deleted at the source; partitions are
    copied, verified and dropped. A kill between the two commits leaves rows in both places, which the
    next run resolves (ON CONFLICT: nothing doubles), so there is nothing else to finish."""

    archive: Connection
    locks_every_level: bool = True

    def finish_interrupted(self, job: ArchiveJob) -> None:
        return None

    def move_partition(self, job: ArchiveJob, partition: Relation) -> None:
        partition_across(job, self.archive, partition)

    def move_batch(self, job: ArchiveJob, keys: list[list[tuple]]) -> None:
        move_across(job, self.archive, keys)
