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

import contextlib
import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from ops_pipelines.adapters.postgres import (
    Connection,
    config_sql,
    connect,
    connect_db,
    describe_dsn,
    errors_named,
    one,
    read_sql,
)
from ops_pipelines.config import ArchiveRule, DatabaseConfig
from ops_pipelines.core.verdict import Verdict
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
        predicate = _predicate(rule, cutoff)
        old_partitions = _old_partitions(source, rule, tree, cutoff)
        if dry_run:
            run.would_move = _count_candidates(source, tree, predicate)
            run.partitions = [
                PartitionAction(p.label, "would drop" if rule.purge else "would move whole", 0) for p in old_partitions
            ]
            return run
        if archive_dsn is None:
            _refuse_archiving_into_itself(rule, tree, "the same database")
            _prepare_archive(source, rule, tree)
            source.commit()
            _finish_detached(source, rule, tree[0].table, run, log)
            for partition in old_partitions:
                _partition_same_database(source, rule, tree[0].table, partition, run, run_id, log, after_copy)
            _move_batches(run, rule, tree, predicate, source, None, run_id, log, after_copy, source_errors)
        else:
            with connect(
                archive_dsn,
                statement_timeout=db.timeouts.statement,
                lock_timeout=db.timeouts.lock,
                connect_timeout=db.timeouts.connect,
                purpose="archive",
            ) as archive:
                if _same_database(source, archive):
                    _refuse_archiving_into_itself(
                        rule, tree, f"destination.dsn ({describe_dsn(archive_dsn)}), the same database"
                    )
                _prepare_archive(archive, rule, tree)
                archive.commit()
                for partition in old_partitions:
                    _partition_across(source, archive, rule, tree[0].table, partition, run, run_id, log, after_copy)
                # Statements on the source run inside the archive's block: they name the source in their errors.
                _move_batches(run, rule, tree, predicate, source, archive, run_id, log, after_copy, source_errors)
    return run


# ---------------------------------------------------------------------------- checking the rule


def inspect_rule(conn: Connection, rule: ArchiveRule) -> list[Node]:
    """The rule's tree of tables, checked against the catalog before any row moves."""
    root = read_table(conn, *rule.table, f"archive rule {rule.name}: table")
    for role, column in (("age_column", rule.age_column), ("status_column", rule.status_column)):
        if column and column not in {c[0] for c in root.columns}:
            raise ArchiveError(f"archive rule {rule.name}: {role} {column} is not a column of {root.label}")
    tree = [Node(root)]

    def add_children(parent_index: int, children, path: str) -> None:
        for i, child in enumerate(children):
            where = f"{path}children[{i}]"
            node = _child_node(conn, rule, tree, parent_index, child.table, child.fk, where)
            tree.append(node)
            add_children(len(tree) - 1, child.children, f"{where}.")

    add_children(0, rule.children, "")
    _refuse_unlisted_references(conn, rule, tree)
    return tree


def _child_node(
    conn,
    rule: ArchiveRule,
    tree: list[Node],
    parent_index: int,
    table_name: tuple[str, str],
    fk: tuple[str, ...],
    where: str,
) -> Node:
    parent = tree[parent_index].table
    table = read_table(conn, *table_name, f"archive rule {rule.name}: {where}")
    if any(node.table.oid == table.oid for node in tree):
        raise ArchiveError(f"archive rule {rule.name}: {where}: {table.label} is already in the rule")
    found = conn.execute(read_sql("archive_foreign_key.sql"), {"child_oid": table.oid, "parent_oid": parent.oid})
    constraints = found.fetchall()
    match = next((c for c in constraints if sorted(c["columns"]) == sorted(fk)), None)
    if match is None:
        others = (
            "; its foreign keys to it: " + ", ".join(f"({', '.join(c['columns'])})" for c in constraints)
            if constraints
            else ""
        )
        raise ArchiveError(
            f"archive rule {rule.name}: {where}: {table.label}({', '.join(fk)}) has no foreign key to "
            f"{parent.label}{others}"
        )
    if sorted(match["referenced"]) != sorted(parent.key):
        raise ArchiveError(
            f"archive rule {rule.name}: {where}: foreign key {match['constraint_name']} references "
            f"{parent.label}({', '.join(match['referenced'])}), not its {parent.key_source} "
            f"({', '.join(parent.key)}): archival follows rows by their key"
        )
    by_parent_column = dict(zip(match["referenced"], match["columns"], strict=True))
    return Node(table, parent_index, tuple(by_parent_column[c] for c in parent.key), where)


def _refuse_archiving_into_itself(rule: ArchiveRule, tree: list[Node], where: str) -> None:
    """An archive table that is its own source table would "move" rows onto themselves: every run
    would report them archived while the table keeps them all. Refused before any row moves."""
    for node in tree:
        if (rule.destination.schema_, node.table.name) == (node.table.schema, node.table.name):
            raise ArchiveError(
                f"archive rule {rule.name}: the archive table of {node.table.label} in {where} is {node.table.label} "
                "itself: choose another destination.schema"
            )


def _same_database(source: Connection, archive: Connection) -> bool:
    """Whether two sessions are on one database of one server (a DSN that names it another way)."""
    query = "SELECT current_database() AS db, (SELECT system_identifier FROM pg_control_system()) AS server"
    try:
        mine, theirs = one(source.execute(query)), one(archive.execute(query))
    except psycopg.Error:  # pg_control_system() refused: fall back to what the servers say of themselves
        source.rollback()
        archive.rollback()
        query = "SELECT current_database() AS db, inet_server_addr()::text || ':' || inet_server_port() AS server"
        mine, theirs = one(source.execute(query)), one(archive.execute(query))
    source.commit()
    archive.commit()
    return mine == theirs


def _refuse_unlisted_references(conn: Connection, rule: ArchiveRule, tree: list[Node]) -> None:
    """Before any row moves: every foreign key into the rule's tables must be a listed child's, or come
    from a table the rule accepts (`allow_references_from`). Otherwise the source delete fails at the
    first referenced row (after a cross-database copy has committed), or CASCADE / SET NULL silently
    delete or change rows that were never archived."""
    listed = {(node.table.oid, tree[node.parent].table.oid, frozenset(node.fk)) for node in tree if node.parent >= 0}
    accepted = {f"{schema}.{table}" for schema, table in rule.allow_references_from}
    names = {node.table.oid: node.table.label for node in tree}
    for ref in conn.execute(read_sql("archive_references.sql"), {"table_oids": list(names)}).fetchall():
        if (ref["referencing_oid"], ref["referenced_oid"], frozenset(ref["columns"])) in listed:
            continue
        if ref["referencing_table"] in accepted:
            continue
        raise ArchiveError(
            f"archive rule {rule.name}: foreign key {ref['constraint_name']} on {ref['referencing_table']}"
            f"({', '.join(ref['columns'])}) references {names[ref['referenced_oid']]} (ON DELETE {ref['on_delete']}), "
            f"and {ref['referencing_table']} is not in children: list it there to move its rows too, or in "
            "allow_references_from to accept what its ON DELETE rule does; nothing was moved"
        )


def read_table(conn: Connection, schema: str, name: str, where: str) -> Table:
    rows = conn.execute(read_sql("archive_table_info.sql"), {"schema": schema, "table": name}).fetchall()
    if not rows:
        raise ArchiveError(f"{where} {schema}.{name} does not exist")
    columns = [(r["column_name"], r["column_type"], r["not_null"]) for r in rows]
    oid = rows[0]["table_oid"]
    key = _primary_key(rows)
    partitioned = bool(rows[0]["partitioned"])
    if key:
        return Table(schema, name, oid, columns, key, partitioned=partitioned)
    unique = conn.execute(read_sql("archive_unique_key.sql"), {"table_oid": oid}).fetchone()
    if unique is None:
        raise ArchiveError(
            f"{where} {schema}.{name} has no primary key and no unique index on NOT NULL columns: archival "
            "needs a key to page through the rows and to verify the archive by"
        )
    return Table(
        schema, name, oid, columns, tuple(unique["columns"]), f"unique index {unique['index_name']}", partitioned
    )


def _primary_key(rows) -> tuple[str, ...]:
    """The primary key's columns in the key's order, from archive_table_info.sql's rows; () for none."""
    return tuple(r["column_name"] for r in sorted(rows, key=lambda r: r["key_position"] or 0) if r["key_position"])


def _archive_table(rule: ArchiveRule, table: Table) -> sql.Identifier:
    return sql.Identifier(rule.destination.schema_, table.name)


def _prepare_archive(conn: Connection, rule: ArchiveRule, tree: list[Node]) -> None:
    """Create the archive schema, tables (same columns, the same key as their primary key) and ledger
    when missing; refuse an existing archive table whose columns differ."""
    schema = rule.destination.schema_
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    for table in (node.table for node in tree if not rule.purge):  # a purge keeps only the ledger
        _create_archive_table(conn, rule, table)
    conn.execute(sql.SQL(read_sql("archive_ledger.sql")).format(schema=sql.Identifier(schema)))


def _create_archive_table(conn: Connection, rule: ArchiveRule, table: Table) -> None:
    """`<destination schema>.<table's name>` with the table's columns and key, unless it exists with
    exactly those columns; an existing one whose columns differ is refused."""
    schema = rule.destination.schema_
    existing = conn.execute(read_sql("archive_table_info.sql"), {"schema": schema, "table": table.name}).fetchall()
    wanted = [(name, type_) for name, type_, _ in table.columns]
    if existing:
        have = [(r["column_name"], r["column_type"]) for r in existing]
        if have != wanted:
            differences = [f"{w[0]} {w[1]}" for w in wanted if w not in have] + [
                f"extra {h[0]} {h[1]}" for h in have if h not in wanted
            ]
            raise ArchiveError(
                f"archive rule {rule.name}: archive table {schema}.{table.name} does not match {table.label}: "
                + ", ".join(differences[:4])
            )
        return
    columns = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(name), sql.SQL(config_sql(type_)), sql.SQL(" NOT NULL" if not_null else "")
        )
        for name, type_, not_null in table.columns
    ]
    try:
        conn.execute(
            sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({}))").format(
                _archive_table(rule, table), sql.SQL(", ").join(columns), table.key_columns
            )
        )
    except psycopg.Error as exc:  # e.g. a type the archive server does not have
        raise ArchiveError(
            f"archive rule {rule.name}: cannot create {schema}.{table.name}: {str(exc).splitlines()[0]}"
        ) from None


# ---------------------------------------------------------------------------- moving


def _predicate(rule: ArchiveRule, cutoff: dt.datetime) -> sql.Composed:
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


def _count_candidates(conn, tree: list[Node], predicate: sql.Composed) -> dict[str, int]:
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


def _move_batches(
    run: ArchiveRun,
    rule: ArchiveRule,
    tree: list[Node],
    predicate,
    source: Connection,
    archive: Connection | None,
    run_id: str,
    log: Log,
    after_copy: Callable[[], None] | None,
    source_errors: errors_named,
) -> None:
    for node in tree:
        run.tables[node.table.label] = TableFigures()
    started = time.monotonic()
    deadline = started + rule.max_runtime.seconds if rule.max_runtime else None
    with ReplicaLag.watch(rule, log) as replica:
        _batch_loop(
            run, rule, tree, predicate, source, archive, run_id, log, after_copy, source_errors, replica, deadline
        )
    run.seconds = time.monotonic() - started


def _batch_loop(run, rule, tree, predicate, source, archive, run_id, log, after_copy, source_errors, replica, deadline):
    """Batches until nothing is left, or max_rows / max_runtime stops it (between batches, said in
    `run.why_stopped`); before each, the replica (if any) may hold it back."""
    root = tree[0].table
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
        with source_errors:
            keys = _lock_batch(source, tree, predicate, last_key, limit, levels=archive is not None)
        if not keys[0]:
            source.rollback()
            break
        if archive is None:
            _move_same_database(run, rule, tree, source, keys[0], run_id)
        else:
            _move_across(run, rule, tree, source, archive, keys, run_id, after_copy, source_errors)
        last_key = keys[0][-1]
        run.batches += 1
        run.longest_batch_ms = max(run.longest_batch_ms, (time.monotonic() - batch_started) * 1000)
        verb = "purged" if rule.purge else "archived"
        log(f"batch {run.batches}: {run.parent_rows:,} {root.label} rows {verb} so far")


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
    row = conn.execute(query, params).fetchone()
    return row["n"], int(row["h"])


def _ledger(conn, rule: ArchiveRule, table: Table, added: int, checksum: int, run_id: str, into: str = "") -> None:
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


def _move_same_database(run, rule, tree: list[Node], conn, root_keys: list[tuple], run_id) -> None:
    """One transaction: leaves first, the rule's table last, each DELETE … RETURNING into the archive,
    each level's rows found by their foreign key into the batch's rows above."""
    for index in reversed(range(len(tree))):
        table = tree[index].table
        condition, params = _rows_of_batch(tree, index, root_keys)
        if rule.purge:  # no copy: the ledger keeps the count and key checksum of what was deleted
            query = sql.SQL(
                "WITH gone AS (DELETE FROM {t} WHERE {c} RETURNING {k}) SELECT count(*) AS n, " + KEY_HASH + " AS h"
                " FROM gone"
            ).format(table.key_text, t=table.ident, c=condition, k=table.key_columns)
            row = conn.execute(query, params).fetchone()
            _tally(run, table, row["n"], int(row["h"]), row["n"], int(row["h"]))
            if row["n"]:
                _ledger(conn, rule, table, row["n"], int(row["h"]), run_id, PURGED)
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
            dst=_archive_table(rule, table),
            k=table.key_columns,
        )
        row = conn.execute(query, params).fetchone()
        _tally(run, table, row["removed"], int(row["removed_h"]), row["added"], int(row["added_h"]))
        if row["removed"] or row["added"]:
            _ledger(conn, rule, table, row["added"], int(row["added_h"]), run_id)
    conn.commit()


def _move_across(run, rule, tree: list[Node], source, archive, keys, run_id, after_copy, source_errors) -> None:
    """Copy the locked rows into the archive and commit there; then delete them at the source."""
    present = {}
    for node, node_keys in zip(tree, keys, strict=True):
        table = node.table
        added, added_h = _copy_rows(source, archive, rule, table, node_keys)
        _ledger(archive, rule, table, added, added_h, run_id)
        present[table.label] = _hash_sums(archive, _archive_table(rule, table), table, node_keys)
    archive.commit()  # from here a crash leaves the rows in both places: the next run resolves it
    if after_copy:
        after_copy()
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
            row = source.execute(query, params).fetchone()
        _tally(run, table, row["n"], int(row["h"]), *present[table.label])
    with source_errors:
        source.commit()


def _copy_rows(source, archive, rule: ArchiveRule, table: Table, keys: list[tuple] | None) -> tuple[int, int]:
    """COPY the rows (those with `keys`; None: all of them) out of the source into a temporary table
    in the archive, then upsert them on the key. Returns how many rows were new to the archive, and
    their key checksum."""
    if keys is not None and not keys:
        return 0, 0
    target = _archive_table(rule, table)
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
    row = archive.execute(query).fetchone()
    archive.execute("DROP TABLE ops_archive_incoming")
    return row["n"], int(row["h"])


def _tally(run: ArchiveRun, table: Table, removed: int, removed_h: int, archived: int, archived_h: int) -> None:
    figures = run.tables[table.label]
    figures.removed += removed
    figures.removed_checksum += removed_h
    figures.archived += archived
    figures.archived_checksum += archived_h


# ---------------------------------------------------------------------------- whole partitions


Partition = Relation  # a partition of the rule's table, by name


def _old_partitions(conn: Connection, rule: ArchiveRule, tree: list[Node], cutoff: dt.datetime) -> list[Partition]:
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


def _partition_same_database(
    conn: Connection,
    rule: ArchiveRule,
    root: Table,
    partition: Partition,
    run: ArchiveRun,
    run_id: str,
    log: Log,
    after_detach: Callable[[], None] | None = None,
) -> None:
    """Purge: count, ledger and DROP in one transaction. Archive: DETACH ... CONCURRENTLY (PostgreSQL 14+,
    no default partition; it never blocks the ERP's queries on the table), then in one transaction move
    it into the archive schema (`SET SCHEMA`) with its ledger entry. A crash between the two leaves an
    intent row in the ledger: the next run finishes the move (`_finish_detached`)."""
    started = time.monotonic()
    if rule.purge:
        rows, checksum = _partition_figures(conn, root, partition.ident)
        _ledger(conn, rule, root, rows, checksum, run_id, PURGED)
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
    _ledger(conn, rule, root, 0, 0, run_id, intent)
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
    if after_detach:  # tests: a crash here leaves the intent row the next run finishes from
        after_detach()
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
    _ledger(conn, rule, root, rows, checksum, run_id, f"{rule.destination.schema_}.{partition.name}")
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE rule = %s AND archive_table = %s").format(
            sql.Identifier(rule.destination.schema_, "ops_archive_ledger")
        ),
        (rule.name, f"{DETACHING}{rule.destination.schema_}.{partition.name}"),
    )
    conn.commit()
    return rows


def _finish_detached(conn: Connection, rule: ArchiveRule, root: Table, run: ArchiveRun, log: Log) -> None:
    """Partitions a crashed run detached but did not move yet (intent rows in the ledger)."""
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


def _partition_across(
    source: Connection,
    archive: Connection,
    rule: ArchiveRule,
    root: Table,
    partition: Partition,
    run: ArchiveRun,
    run_id: str,
    log: Log,
    after_copy: Callable[[], None] | None,
) -> None:
    """Another database: the partition is locked against writes (SHARE), copied into an archive table of
    its name and verified there (count and key checksum), the archive commits, then the source drops
    the partition. A crash before the drop leaves it attached: the next run copies it again (ON
    CONFLICT: no duplicate) and drops it."""
    started = time.monotonic()
    source.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(partition.ident))
    rows, checksum = _partition_figures(source, root, partition.ident)
    table = Table(rule.destination.schema_, partition.name, 0, root.columns, root.key, root.key_source)
    _create_archive_table(archive, rule, table)
    incoming = Table(partition.schema, partition.name, 0, root.columns, root.key, root.key_source)
    added, added_checksum = _copy_rows(source, archive, rule, incoming, None)  # new to the archive: a re-run adds 0
    archived = _partition_figures(archive, root, sql.Identifier(rule.destination.schema_, partition.name))
    if archived != (rows, checksum):
        raise ArchiveError(
            f"archive rule {rule.name}: partition {partition.label}: the archive holds {archived[0]:,} rows, the "
            f"source {rows:,}; the partition was kept"
        )
    _ledger(archive, rule, root, added, added_checksum, run_id, f"{rule.destination.schema_}.{partition.name}")
    archive.commit()
    if after_copy:
        after_copy()
    source.execute(sql.SQL("DROP TABLE {}").format(partition.ident))
    source.commit()
    run.partitions.append(
        PartitionAction(partition.label, "copied, verified, dropped", rows, time.monotonic() - started)
    )
    log(f"partition {partition.label}: copied to the archive, verified, dropped ({rows:,} rows)")


# ---------------------------------------------------------------------------- verifying


def verify_archive(db: DatabaseConfig, rule: ArchiveRule) -> Verdict:
    """Ledger totals == what the archive tables hold (count and key checksum), per table."""
    dsn = (rule.destination.dsn or db.dsn).get_secret_value()
    schema = rule.destination.schema_
    problems, metadata = [], {}
    with connect(
        dsn,
        statement_timeout="30 min",
        lock_timeout=db.timeouts.lock,
        connect_timeout=db.timeouts.connect,
        purpose="archive",
    ) as conn:
        if (
            one(
                conn.execute(
                    "SELECT to_regclass(%s) AS t", (sql.Identifier(schema, "ops_archive_ledger").as_string(conn),)
                )
            )["t"]
            is None
        ):
            return Verdict.ok(f"nothing archived yet by {rule.name}", {})
        # Every rule writing to this schema: an archive table may be shared, and its ledger rows with it.
        entries = conn.execute(
            sql.SQL(
                "SELECT archive_table, sum(rows_added) AS n, sum(key_checksum) AS h FROM {}"
                " GROUP BY archive_table ORDER BY archive_table"
            ).format(sql.Identifier(schema, "ops_archive_ledger"))
        ).fetchall()
        purged = sum(int(r["n"]) for r in entries if r["archive_table"] == PURGED)
        ledger = [r for r in entries if r["archive_table"] != PURGED and not r["archive_table"].startswith(DETACHING)]
        if purged:
            metadata["rows purged (ledger)"] = purged
        for row in ledger:
            table_schema, table_name = row["archive_table"].split(".", 1)
            info = conn.execute(
                read_sql("archive_table_info.sql"), {"schema": table_schema, "table": table_name}
            ).fetchall()
            key = _primary_key(info)
            if not key:
                problems.append(f"{row['archive_table']} is missing")
                continue
            archived = Table(table_schema, table_name, 0, [], key)
            actual = one(
                conn.execute(
                    sql.SQL("SELECT count(*) AS n, " + KEY_HASH + " AS h FROM {}").format(
                        archived.key_text, sql.Identifier(table_schema, table_name)
                    )
                )
            )
            metadata[f"{row['archive_table']} rows"] = int(actual["n"])
            if int(actual["n"]) != int(row["n"]) or int(actual["h"]) != int(row["h"]):
                problems.append(
                    f"{row['archive_table']} holds {actual['n']:,} rows, the ledger says {int(row['n']):,} were "
                    "archived"
                )
    if problems:
        return Verdict.fail("; ".join(problems), metadata)
    if not ledger:
        return Verdict.ok(f"{purged:,} rows purged, as the ledger records; no copy is kept", metadata)
    return Verdict.ok(f"every archived row is in the archive ({len(ledger)} tables)", metadata)
