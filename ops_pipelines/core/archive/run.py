"""Running one rule once: the same database or another, whole partitions first, then batches."""

from collections.abc import Callable

from psycopg import sql

from ops_pipelines.adapters.postgres import (
    connect,
    connect_db,
    describe_dsn,
    errors_named,
    one,
)
from ops_pipelines.config import ArchiveRule, DatabaseConfig
from ops_pipelines.core.archive.batches import count_candidates, move_batches, rule_predicate
from ops_pipelines.core.archive.destination import OtherDatabase, SameDatabase
from ops_pipelines.core.archive.model import ArchiveJob, ArchiveRun, Log, PartitionAction, Relation
from ops_pipelines.core.archive.partitions import partitions_to_move_whole
from ops_pipelines.core.archive.tree import inspect_rule, prepare_archive, refuse_archiving_into_itself, same_database


def run_archive(
    db: DatabaseConfig,
    rule: ArchiveRule,
    *,
    dry_run: bool = False,
    run_id: str = "",
    log: Log = lambda message: None,
    after_copy: Callable[[], None] | None = None,
) -> ArchiveRun:
    """Run `rule` once. `after_copy` (tests): called between the archive's and the source's commit, and
    between a partition's detach and its move."""
    source_dsn = db.dsn.get_secret_value()
    archive_dsn = rule.destination.dsn.get_secret_value() if rule.destination.dsn else None
    source_errors = errors_named(describe_dsn(source_dsn))
    with connect_db(db, "archive") as source:
        tree = inspect_rule(source, rule)
        cutoff = one(source.execute("SELECT now() - %s::interval AS cutoff", (rule.older_than.to_pg_interval(),)))[
            "cutoff"
        ]
        source.commit()
        run = ArchiveRun(rule.name, cutoff, dry_run)
        predicate = rule_predicate(rule, cutoff)
        old_partitions = partitions_to_move_whole(source, rule, tree, cutoff)
        if dry_run:
            run.would_move = count_candidates(source, tree, predicate)
            run.partitions = [
                PartitionAction(p.label, "would drop" if rule.purge else "would move whole", 0) for p in old_partitions
            ]
            return run
        if archive_dsn is None:
            refuse_archiving_into_itself(rule, tree, "the same database")
            prepare_archive(source, rule, tree)
            source.commit()
            _move(
                ArchiveJob(rule, tree, run, source, SameDatabase(), run_id, log, after_copy, source_errors),
                old_partitions,
                predicate,
            )
        else:
            with connect(
                archive_dsn,
                statement_timeout=db.timeouts.statement,
                lock_timeout=db.timeouts.lock,
                connect_timeout=db.timeouts.connect,
                purpose="archive",
            ) as archive:
                if same_database(source, archive):
                    refuse_archiving_into_itself(
                        rule, tree, f"destination.dsn ({describe_dsn(archive_dsn)}), the same database"
                    )
                prepare_archive(archive, rule, tree)
                archive.commit()
                destination = OtherDatabase(archive)
                _move(
                    ArchiveJob(rule, tree, run, source, destination, run_id, log, after_copy, source_errors),
                    old_partitions,
                    predicate,
                )
    return run


def _move(job: ArchiveJob, old_partitions: list[Relation], predicate: sql.Composed) -> None:
    """What an interrupted run left, then whole partitions, then batches: into either destination."""
    job.destination.finish_interrupted(job)
    for partition in old_partitions:
        job.destination.move_partition(job, partition)
    move_batches(job, predicate)
