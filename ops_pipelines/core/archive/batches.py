"""Moving rows in batches: lock a batch (keyset pagination, parent-first, FOR UPDATE), then move it
leaf-first, within one database or across to another, with a ledger entry per table; between
batches the limits (max_rows, max_runtime) and the replica's lag may stop or hold it.
"""

import contextlib
import datetime as dt
import time
from collections.abc import Iterator

from psycopg import sql

from ops_pipelines.adapters.postgres import (
    Connection,
    config_sql,
    connect,
    describe_dsn,
    one,
    read_sql,
)
from ops_pipelines.config import ArchiveRule
from ops_pipelines.core.archive.model import (
    KEY_HASH,
    PURGED,
    ArchiveError,
    ArchiveJob,
    ArchiveRun,
    Log,
    Node,
    Table,
    TableFigures,
)
from ops_pipelines.core.archive.tree import archive_table


def rule_predicate(rule: ArchiveRule, cutoff: dt.datetime) -> sql.Composed:
    parts = [sql.SQL("{} < {}").format(sql.Identifier(rule.age_column), sql.Literal(cutoff))]
    if rule.status_column:
        parts.append(sql.SQL("{} = ANY({})").format(sql.Identifier(rule.status_column), sql.Literal(rule.status_in)))
    if rule.where:
        parts.append(sql.SQL("({})").format(sql.SQL(config_sql(rule.where))))  # written by the DBA who owns the config
    return sql.SQL(" AND ").join(parts)


def _in_keys(columns: tuple[str, ...], types: tuple[str, ...], keys: list[tuple], literal: bool = False):
    """`(columns) matching one of `keys` (tuples in the columns' order), and its parameters: `= ANY`
    for one column, a typed `unnest` of one array per column for a composite key. `literal`: the
    arrays inline (COPY takes no parameters)."""
    arrays = [list(values) for values in zip(*keys, strict=True)] if keys else [[] for _ in columns]
    if len(columns) == 1:
        if literal:
            return sql.SQL("{} = ANY({})").format(sql.Identifier(columns[0]), sql.Literal(arrays[0])), ()
        return sql.SQL("{} = ANY(%s)").format(sql.Identifier(columns[0])), (arrays[0],)
    placeholders = [
        sql.SQL("{}::{}[]").format(sql.Literal(values) if literal else sql.SQL("%s"), sql.SQL(config_sql(type_)))
        for values, type_ in zip(arrays, types, strict=True)
    ]
    condition = sql.SQL("({}) IN (SELECT * FROM unnest({}))").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(placeholders)
    )
    return condition, () if literal else tuple(arrays)


def _own_keys(table: Table, keys: list[tuple], literal: bool = False):
    return _in_keys(table.key, table.key_types, keys, literal)


def count_candidates(conn, tree: list[Node], predicate: sql.Composed) -> dict[str, int]:
    selected: list[sql.Composable] = []
    counts = {}
    for node in tree:
        table = node.table
        if node.parent < 0:
            where = predicate
        else:
            where = sql.SQL("({}) IN ({})").format(
                sql.SQL(", ").join(map(sql.Identifier, node.fk)), selected[node.parent]
            )
        selected.append(sql.SQL("SELECT {k} FROM {t} WHERE {w}").format(k=table.key_columns, t=table.ident, w=where))
        counts[table.label] = one(conn.execute(sql.SQL("SELECT count(*) AS n FROM ({}) AS s").format(selected[-1])))[
            "n"
        ]
    conn.rollback()
    return counts


def move_batches(job: ArchiveJob, predicate: sql.Composed) -> None:
    for node in job.tree:
        job.run.tables[node.table.label] = TableFigures()
    started = time.monotonic()
    deadline = started + job.rule.max_runtime.seconds if job.rule.max_runtime else None
    with ReplicaLag.watch(job.rule, job.log) as replica:
        _batch_loop(job, predicate, replica, deadline)
    job.run.seconds = time.monotonic() - started


def _batch_loop(job: ArchiveJob, predicate: sql.Composed, replica: "ReplicaLag | None", deadline: float | None) -> None:
    """Batches until nothing is left, or max_rows / max_runtime stops it (between batches, said in
    `run.why_stopped`); before each, the replica (if any) may hold it back."""
    run, rule, log, source = job.run, job.rule, job.log, job.source
    last_key = None
    while True:
        if rule.max_rows is not None and run.parent_rows >= rule.max_rows:
            run.why_stopped = "max_rows"
            break
        if replica is not None:
            run.replica_paused_seconds += replica.wait_until_caught_up(deadline)
        if deadline is not None and time.monotonic() >= deadline:
            run.why_stopped = "max_runtime"
            log(f"stopped after max_runtime ({rule.max_runtime}), between batches; the next run goes on")
            break
        limit = rule.batch_size if rule.max_rows is None else min(rule.batch_size, rule.max_rows - run.parent_rows)
        batch_started = time.monotonic()
        with job.source_errors:
            keys = _lock_batch(source, job.tree, predicate, last_key, limit, levels=job.destination.locks_every_level)
        if not keys[0]:
            source.rollback()
            break
        job.destination.move_batch(job, keys)
        last_key = keys[0][-1]
        run.batches += 1
        run.longest_batch_ms = max(run.longest_batch_ms, (time.monotonic() - batch_started) * 1000)
        verb = "purged" if rule.purge else "archived"
        log(f"batch {run.batches}: {run.parent_rows:,} {job.root.label} rows {verb} so far")


class ReplicaLag:
    """A rule's replica (`replica_dsn`): between batches, wait while its replay is more than
    `max_replica_lag` behind — never while holding a lock (no batch is open then)."""

    POLL_SECONDS = 1.0

    def __init__(self, conn: Connection, rule: ArchiveRule, log: Log) -> None:
        self.conn, self.rule, self.log = conn, rule, log

    @classmethod
    @contextlib.contextmanager
    def watch(cls, rule: ArchiveRule, log: Log) -> Iterator["ReplicaLag | None"]:
        if rule.replica_dsn is None:
            yield None
            return
        with connect(rule.replica_dsn.get_secret_value(), statement_timeout="10s", purpose="archive") as conn:
            if not one(conn.execute(read_sql("archive_replica_lag.sql")))["replica"]:
                raise ArchiveError(
                    f"archive rule {rule.name}: replica_dsn {describe_dsn(rule.replica_dsn.get_secret_value())} is "
                    "not a replica (pg_is_in_recovery() is false); nothing was moved"
                )
            conn.rollback()
            yield cls(conn, rule, log)

    def lag(self) -> float:
        seconds = float(one(self.conn.execute(read_sql("archive_replica_lag.sql")))["lag_seconds"])
        self.conn.rollback()
        return seconds

    def wait_until_caught_up(self, deadline: float | None) -> float:
        """Seconds spent waiting (0 when the replica is within the limit, or the deadline passed)."""
        limit = self.rule.max_replica_lag.seconds if self.rule.max_replica_lag else 0
        started = time.monotonic()
        said = None
        while (lag := self.lag()) > limit:
            if deadline is not None and time.monotonic() >= deadline:
                break
            if said is None or time.monotonic() - said >= 60:
                self.log(
                    f"paused: the replica replays {lag:.0f} s behind (max_replica_lag {self.rule.max_replica_lag})"
                )
                said = time.monotonic()
            time.sleep(self.POLL_SECONDS)
        return time.monotonic() - started if said is not None else 0.0


def _lock_batch(
    source, tree: list[Node], predicate, last_key: tuple | None, limit: int, levels: bool
) -> list[list[tuple]]:
    """The next batch's keys, locked: the rule's rows after `last_key`, and with `levels` (a copy to
    another database needs every row's key) each level's rows referencing the level above, parent-first,
    in the tree's order. Within one database the rule's rows alone are locked: a new row referencing
    one of them waits for the batch's commit and then fails its foreign key, so none is left behind."""
    root = tree[0].table
    after = (
        sql.SQL("({}) > ({}) AND ").format(root.key_columns, sql.SQL(", ").join(map(sql.Literal, last_key)))
        if last_key is not None
        else sql.SQL("")
    )
    query = sql.SQL("SELECT {k} FROM {t} WHERE {after}{p} ORDER BY {k} LIMIT {n} FOR UPDATE").format(
        k=root.key_columns, t=root.ident, after=after, p=predicate, n=sql.Literal(limit)
    )
    keys = [[tuple(row.values()) for row in source.execute(query).fetchall()]]
    for node in tree[1:] if levels else []:
        parent_keys = keys[node.parent]
        if not parent_keys:
            keys.append([])
            continue
        condition, params = _in_keys(node.fk, tree[node.parent].table.key_types, parent_keys)
        query = sql.SQL("SELECT {k} FROM {t} WHERE {c} ORDER BY {k} FOR UPDATE").format(
            k=node.table.key_columns, t=node.table.ident, c=condition
        )
        keys.append([tuple(row.values()) for row in source.execute(query, params).fetchall()])
    return keys


def _hash_sums(conn, table_ident, table: Table, keys: list[tuple]) -> tuple[int, int]:
    condition, params = _own_keys(table, keys)
    query = sql.SQL("SELECT count(*) AS n, " + KEY_HASH + " AS h FROM {} WHERE {}").format(
        table.key_text, table_ident, condition
    )
    row = one(conn.execute(query, params))
    return row["n"], int(row["h"])


def ledger(conn, rule: ArchiveRule, table: Table, added: int, checksum: int, run_id: str, into: str = "") -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (rule, source_table, archive_table, rows_added, key_checksum, run_id)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(sql.Identifier(rule.destination.schema_, "ops_archive_ledger")),
        (rule.name, table.label, into or f"{rule.destination.schema_}.{table.name}", added, checksum, run_id),
    )


def _rows_of_batch(tree: list[Node], index: int, root_keys: list[tuple]) -> tuple[sql.Composable, tuple]:
    """The condition selecting tree[index]'s rows of a batch: the root's own keys, or the foreign key
    into the rows its parent has in the batch (a subquery per level above)."""
    node = tree[index]
    if node.parent < 0:
        return _own_keys(node.table, root_keys)
    parent = tree[node.parent]
    fk = sql.SQL(", ").join(map(sql.Identifier, node.fk))
    if parent.parent < 0:
        return _in_keys(node.fk, parent.table.key_types, root_keys)
    above, params = _rows_of_batch(tree, node.parent, root_keys)
    subquery = sql.SQL("SELECT {k} FROM {t} WHERE {c}").format(
        k=parent.table.key_columns, t=parent.table.ident, c=above
    )
    return sql.SQL("({}) IN ({})").format(fk, subquery), params


def move_same_database(job: ArchiveJob, root_keys: list[tuple]) -> None:
    """One transaction: leaves first, the rule's table last, each DELETE … RETURNING into the archive,
    each level's rows found by their foreign key into the batch's rows above."""
    run, rule, tree, conn, run_id = job.run, job.rule, job.tree, job.source, job.run_id
    for index in reversed(range(len(tree))):
        table = tree[index].table
        condition, params = _rows_of_batch(tree, index, root_keys)
        if rule.purge:  # no copy: the ledger keeps the count and key checksum of what was deleted
            query = sql.SQL(
                "WITH gone AS (DELETE FROM {t} WHERE {c} RETURNING {k}) SELECT count(*) AS n, " + KEY_HASH + " AS h"
                " FROM gone"
            ).format(table.key_text, t=table.ident, c=condition, k=table.key_columns)
            row = one(conn.execute(query, params))
            _tally(run, table, row["n"], int(row["h"]), row["n"], int(row["h"]))
            if row["n"]:
                ledger(conn, rule, table, row["n"], int(row["h"]), run_id, PURGED)
            continue
        query = sql.SQL(
            "WITH moved AS (DELETE FROM {src} WHERE {c} RETURNING *),"
            " added AS (INSERT INTO {dst} SELECT * FROM moved RETURNING {k})"
            " SELECT (SELECT count(*) FROM moved) AS removed, (SELECT " + KEY_HASH + " FROM moved) AS removed_h,"
            " (SELECT count(*) FROM added) AS added, (SELECT " + KEY_HASH + " FROM added) AS added_h"
        ).format(
            table.key_text,
            table.key_text,
            src=table.ident,
            c=condition,
            dst=archive_table(rule, table),
            k=table.key_columns,
        )
        row = one(conn.execute(query, params))
        _tally(run, table, row["removed"], int(row["removed_h"]), row["added"], int(row["added_h"]))
        if row["removed"] or row["added"]:
            ledger(conn, rule, table, row["added"], int(row["added_h"]), run_id)
    conn.commit()


def move_across(job: ArchiveJob, archive: Connection, keys: list[list[tuple]]) -> None:
    """Copy the locked rows into the archive and commit there; then delete them at the source."""
    run, rule, tree, source, run_id, source_errors = (
        job.run,
        job.rule,
        job.tree,
        job.source,
        job.run_id,
        job.source_errors,
    )
    present = {}
    for node, node_keys in zip(tree, keys, strict=True):
        table = node.table
        added, added_h = copy_rows(source, archive, rule, table, node_keys)
        ledger(archive, rule, table, added, added_h, run_id)
        present[table.label] = _hash_sums(archive, archive_table(rule, table), table, node_keys)
    archive.commit()  # from here a crash leaves the rows in both places: the next run resolves it
    if job.after_copy:
        job.after_copy()
    for node, node_keys in reversed(list(zip(tree, keys, strict=True))):  # leaves first
        table = node.table
        if not node_keys:
            _tally(run, table, 0, 0, *present[table.label])
            continue
        condition, params = _own_keys(table, node_keys)
        query = sql.SQL(
            "WITH moved AS (DELETE FROM {t} WHERE {c} RETURNING {k})"
            " SELECT count(*) AS n, " + KEY_HASH + " AS h FROM moved"
        ).format(table.key_text, t=table.ident, c=condition, k=table.key_columns)
        with source_errors:
            row = one(source.execute(query, params))
        _tally(run, table, row["n"], int(row["h"]), *present[table.label])
    with source_errors:
        source.commit()


def copy_rows(source, archive, rule: ArchiveRule, table: Table, keys: list[tuple] | None) -> tuple[int, int]:
    """COPY the rows (those with `keys`; None: all of them) out of the source into a temporary table
    in the archive, then upsert them on the key. Returns how many rows were new to the archive, and
    their key checksum."""
    if keys is not None and not keys:
        return 0, 0
    target = archive_table(rule, table)
    archive.execute(sql.SQL("CREATE TEMP TABLE ops_archive_incoming (LIKE {}) ON COMMIT DROP").format(target))
    condition = _own_keys(table, keys, literal=True)[0] if keys is not None else sql.SQL("true")
    select = sql.SQL("COPY (SELECT * FROM {} WHERE {}) TO STDOUT").format(table.ident, condition)
    with source.cursor().copy(select) as out, archive.cursor().copy("COPY ops_archive_incoming FROM STDIN") as into:
        for data in out:
            into.write(data)
    names = [sql.Identifier(name) for name, _, _ in table.columns if name not in table.key]
    update = (
        sql.SQL("DO UPDATE SET ({}) = ROW({})").format(
            sql.SQL(", ").join(names), sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(n) for n in names)
        )
        if names
        else sql.SQL("DO NOTHING")
    )
    query = sql.SQL(
        "WITH up AS (INSERT INTO {t} SELECT * FROM ops_archive_incoming ON CONFLICT ({k}) {update}"
        " RETURNING {kt} AS k, (xmax = 0) AS inserted)"
        " SELECT count(*) FILTER (WHERE inserted) AS n, coalesce(sum(hashtextextended(k, 0)) FILTER (WHERE "
        "inserted), 0) AS h FROM up"
    ).format(t=target, k=table.key_columns, kt=table.key_text, update=update)
    row = one(archive.execute(query))
    archive.execute("DROP TABLE ops_archive_incoming")
    return row["n"], int(row["h"])


def _tally(run: ArchiveRun, table: Table, removed: int, removed_h: int, archived: int, archived_h: int) -> None:
    figures = run.tables[table.label]
    figures.removed += removed
    figures.removed_checksum += removed_h
    figures.archived += archived
    figures.archived_checksum += archived_h
