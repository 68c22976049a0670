"""Whole partitions: a range partition older than the cutoff detaches and moves (or drops, for a
purge) as a catalog change, instead of row by row.
"""

import datetime as dt
import re
import time

from psycopg import sql

from ops_pipelines.adapters.postgres import (
    Connection,
    config_sql,
    one,
    read_sql,
)
from ops_pipelines.config import ArchiveRule
from ops_pipelines.core.archive.batches import copy_rows, ledger
from ops_pipelines.core.archive.model import (
    DETACHING,
    KEY_HASH,
    PURGED,
    ArchiveError,
    ArchiveJob,
    Node,
    Partition,
    PartitionAction,
    Table,
)
from ops_pipelines.core.archive.tree import create_archive_table


def partitions_to_move_whole(
    conn: Connection, rule: ArchiveRule, tree: list[Node], cutoff: dt.datetime
) -> list[Partition]:
    """A table partitioned by range on `age_column`: its partitions whose every row is older than the
    cutoff (upper bound at or before it) move, or are dropped by a purge, whole — a catalog change, not
    a row-by-row delete. Only when the rule selects by age alone and has no children: otherwise each
    row must pass the rule's other conditions or take its children along. A partition straddling the
    cutoff, the default partition and sub-partitioned ones go row by row, with the rest."""
    root = tree[0].table
    if not root.partitioned:
        return []
    found = one(
        conn.execute(
            "SELECT pg_get_partkeydef(%s::oid) AS k, 'RANGE (' || quote_ident(%s) || ')' AS wanted",
            (root.oid, rule.age_column),
        )
    )
    key = found["k"]
    if key != found["wanted"]:
        raise ArchiveError(
            f"archive rule {rule.name}: table {root.label} is partitioned by {key}, not by range on its age_column "
            f"{rule.age_column}: archive it as a plain table, or partition it by {rule.age_column}"
        )
    if len(tree) > 1 or rule.status_column or rule.where:
        conn.rollback()
        return []
    age_type = next(type_ for name, type_, _ in root.columns if name == rule.age_column)
    old = []
    for row in conn.execute(read_sql("archive_partitions.sql"), {"table_oid": root.oid}).fetchall():
        upper = re.search(r"\) TO \((.+)\)$", row["bound"] or "")
        if row["partitioned"] or upper is None or "MAXVALUE" in upper.group(1):
            continue
        query = sql.SQL("SELECT ({})::{} <= {} AS old").format(
            sql.SQL(config_sql(upper.group(1))), sql.SQL(config_sql(age_type)), sql.Literal(cutoff)
        )
        if one(conn.execute(query))["old"]:
            old.append(Partition(row["schema"], row["name"]))
    conn.rollback()
    return old


def _partition_figures(conn: Connection, root: Table, ident: sql.Identifier) -> tuple[int, int]:
    row = one(conn.execute(sql.SQL("SELECT count(*) AS n, " + KEY_HASH + " AS h FROM {}").format(root.key_text, ident)))
    return row["n"], int(row["h"])


def partition_same_database(job: ArchiveJob, partition: Partition) -> None:
    """Purge: count, ledger and DROP in one transaction. Archive: DETACH ... CONCURRENTLY (PostgreSQL 14+,
    no default partition; it never blocks the ERP's queries on the table), then in one transaction move
    it into the archive schema (`SET SCHEMA`) with its ledger entry. A crash between the two leaves an
    intent row in the ledger: the next run finishes the move (`finish_detached`)."""
    conn, rule, root, run, run_id, log = job.source, job.rule, job.root, job.run, job.run_id, job.log
    started = time.monotonic()
    if rule.purge:
        rows, checksum = _partition_figures(conn, root, partition.ident)
        ledger(conn, rule, root, rows, checksum, run_id, PURGED)
        conn.execute(sql.SQL("DROP TABLE {}").format(partition.ident))
        conn.commit()
        run.partitions.append(PartitionAction(partition.label, "dropped", rows, time.monotonic() - started))
        log(f"partition {partition.label}: dropped ({rows:,} rows, in the ledger)")
        return
    target = sql.Identifier(rule.destination.schema_, partition.name)
    if one(conn.execute("SELECT to_regclass(%s) AS t", (target.as_string(conn),)))["t"] is not None:
        raise ArchiveError(
            f"archive rule {rule.name}: {rule.destination.schema_}.{partition.name} already exists: partition "
            f"{partition.label} cannot move there; nothing was moved"
        )
    intent = f"{DETACHING}{rule.destination.schema_}.{partition.name}"
    ledger(conn, rule, root, 0, 0, run_id, intent)
    conn.commit()
    concurrently = conn.info.server_version >= 140000 and not _has_default_partition(conn, root)
    conn.rollback()  # autocommit can change only outside a transaction
    conn.autocommit = True
    try:
        conn.execute(
            sql.SQL("ALTER TABLE {} DETACH PARTITION {}{}").format(
                root.ident, partition.ident, sql.SQL(" CONCURRENTLY" if concurrently else "")
            )
        )
    finally:
        conn.autocommit = False
    if job.after_copy:  # tests: a crash here leaves the intent row the next run finishes from
        job.after_copy()
    rows = _settle_detached(conn, rule, root, partition, run_id)
    what = f"detached{' concurrently' if concurrently else ''}, moved"
    run.partitions.append(PartitionAction(partition.label, what, rows, time.monotonic() - started))
    log(f"partition {partition.label}: detached, moved to {rule.destination.schema_} ({rows:,} rows)")


def _settle_detached(conn: Connection, rule: ArchiveRule, root: Table, partition: Partition, run_id: str) -> int:
    """A detached partition into the archive schema, its ledger entry in place of the intent: one transaction."""
    rows, checksum = _partition_figures(conn, root, partition.ident)
    conn.execute(
        sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(partition.ident, sql.Identifier(rule.destination.schema_))
    )
    ledger(conn, rule, root, rows, checksum, run_id, f"{rule.destination.schema_}.{partition.name}")
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE rule = %s AND archive_table = %s").format(
            sql.Identifier(rule.destination.schema_, "ops_archive_ledger")
        ),
        (rule.name, f"{DETACHING}{rule.destination.schema_}.{partition.name}"),
    )
    conn.commit()
    return rows


def finish_detached(job: ArchiveJob) -> None:
    """Partitions a crashed run detached but did not move yet (intent rows in the ledger)."""
    conn, rule, root, run, log = job.source, job.rule, job.root, job.run, job.log
    ledger = sql.Identifier(rule.destination.schema_, "ops_archive_ledger")
    intents = conn.execute(
        sql.SQL("SELECT archive_table, run_id FROM {} WHERE rule = %s AND archive_table LIKE %s").format(ledger),
        (rule.name, DETACHING + "%"),
    ).fetchall()
    conn.rollback()
    for intent in intents:
        name = intent["archive_table"].removeprefix(DETACHING).split(".", 1)[1]
        partition = Partition(root.schema, name)
        still = one(conn.execute("SELECT to_regclass(%s) AS t", (partition.ident.as_string(conn),)))["t"]
        attached = (
            one(
                conn.execute("SELECT count(*) AS n FROM pg_inherits WHERE inhrelid = %s::regclass", (partition.label,))
            )["n"]
            if still
            else 0
        )
        conn.rollback()
        if still and not attached:
            rows = _settle_detached(conn, rule, root, partition, intent["run_id"])
            run.partitions.append(PartitionAction(partition.label, "moved (detached by an interrupted run)", rows))
            log(f"partition {partition.label}: finished the move an interrupted run began ({rows:,} rows)")


def _has_default_partition(conn: Connection, root: Table) -> bool:
    rows = conn.execute(read_sql("archive_partitions.sql"), {"table_oid": root.oid}).fetchall()
    return any(r["bound"] == "DEFAULT" for r in rows)


def partition_across(job: ArchiveJob, archive: Connection, partition: Partition) -> None:
    """Another database: the partition is locked against writes (SHARE), copied into an archive table of
    its name and verified there (count and key checksum), the archive commits, then the source drops
    the partition. A crash before the drop leaves it attached: the next run copies it again (ON
    CONFLICT: no duplicate) and drops it."""
    source, rule, root, run, run_id, log = job.source, job.rule, job.root, job.run, job.run_id, job.log
    started = time.monotonic()
    source.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(partition.ident))
    rows, checksum = _partition_figures(source, root, partition.ident)
    table = Table(rule.destination.schema_, partition.name, 0, root.columns, root.key, root.key_source)
    create_archive_table(archive, rule, table)
    incoming = Table(partition.schema, partition.name, 0, root.columns, root.key, root.key_source)
    added, added_checksum = copy_rows(source, archive, rule, incoming, None)  # new to the archive: a re-run adds 0
    archived = _partition_figures(archive, root, sql.Identifier(rule.destination.schema_, partition.name))
    if archived != (rows, checksum):
        raise ArchiveError(
            f"archive rule {rule.name}: partition {partition.label}: the archive holds {archived[0]:,} rows, the "
            f"source {rows:,}; the partition was kept"
        )
    ledger(archive, rule, root, added, added_checksum, run_id, f"{rule.destination.schema_}.{partition.name}")
    archive.commit()
    if job.after_copy:
        job.after_copy()
    source.execute(sql.SQL("DROP TABLE {}").format(partition.ident))
    source.commit()
    run.partitions.append(
        PartitionAction(partition.label, "copied, verified, dropped", rows, time.monotonic() - started)
    )
    log(f"partition {partition.label}: copied to the archive, verified, dropped ({rows:,} rows)")
