"""Archival: move old rows (with the child rows that reference them) to an archive, in batches,
losing nothing. The anchor is Percona's pt-archiver: small batches, a commit per batch, a dry run,
figures per run, and no long locks.

Each batch locks its parent rows (keyset pagination on the primary key, never OFFSET) and their
children with `FOR UPDATE`, so nothing can change or reference them while they move:

- same database: children then parents, each `WITH moved AS (DELETE … RETURNING *) INSERT …`,
  in one transaction;
- another database: the locked rows are copied into the archive and committed there first
  (`ON CONFLICT` on the primary key, so a re-run after a crash neither duplicates nor loses),
  then deleted at the source. A crash between the two commits leaves the rows in both places;
  the next run copies nothing new and deletes them.

Every batch records what it added in `<archive schema>.ops_archive_ledger`, in the archive's own
transaction; `verify_archive` compares the ledger with the archive tables (count and an
order-independent checksum of the primary keys), so a row removed behind our back shows.
"""

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from ops_pipelines.config import ArchiveRule, DatabaseConfig
from ops_pipelines.core.verdict import Verdict
from ops_pipelines.errors import OpsError
from ops_pipelines.resources.postgres import (
    Connection,
    config_sql,
    connect,
    connect_db,
    describe_dsn,
    errors_named,
    one,
    read_sql,
)

Log = Callable[[str], None]
KEY_HASH = "coalesce(sum(hashtextextended({}::text, 0)), 0)"  # order-independent key checksum


class ArchiveError(OpsError):
    """The rule cannot run: a missing table or column, a child without a foreign key, an archive
    table whose columns differ. Raised before any row moves."""


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    oid: int
    columns: list[tuple[str, str, bool]]  # (name, type, not null)
    pk: str

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


@dataclass(frozen=True)
class Child:
    table: Table
    fk: str


@dataclass
class TableFigures:
    removed: int = 0  # rows deleted from the source
    removed_checksum: int = 0
    archived: int = 0  # those rows' keys found in the archive after the batch
    archived_checksum: int = 0


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
    """Run `rule` once. `after_copy` (tests): called between the archive's and the source's commit."""
    source_dsn = db.dsn.get_secret_value()
    archive_dsn = rule.destination.dsn.get_secret_value() if rule.destination.dsn else None
    source_errors = errors_named(describe_dsn(source_dsn))
    with connect_db(db, "archive") as source:
        parent, children = inspect_rule(source, rule)
        cutoff = one(source.execute("SELECT now() - %s::interval AS cutoff", (rule.older_than.to_pg_interval(),)))[
            "cutoff"
        ]
        source.commit()
        run = ArchiveRun(rule.name, cutoff, dry_run)
        predicate = _predicate(rule, cutoff)
        if dry_run:
            run.would_move = _count_candidates(source, parent, children, predicate)
            return run
        if archive_dsn is None:
            _prepare_archive(source, rule, parent, children)
            source.commit()
            _move_batches(run, rule, parent, children, predicate, source, None, run_id, log, after_copy, source_errors)
        else:
            with connect(
                archive_dsn,
                statement_timeout=db.timeouts.statement,
                lock_timeout=db.timeouts.lock,
                connect_timeout=db.timeouts.connect,
                purpose="archive",
            ) as archive:
                _prepare_archive(archive, rule, parent, children)
                archive.commit()
                # Statements on the source run inside the archive's block: they name the source in their errors.
                _move_batches(
                    run, rule, parent, children, predicate, source, archive, run_id, log, after_copy, source_errors
                )
    return run


# ---------------------------------------------------------------------------- checking the rule


def inspect_rule(conn: Connection, rule: ArchiveRule) -> tuple[Table, list[Child]]:
    parent = read_table(conn, *rule.table, f"archive rule {rule.name}: table")
    for role, column in (("age_column", rule.age_column), ("status_column", rule.status_column)):
        if column and column not in {c[0] for c in parent.columns}:
            raise ArchiveError(f"archive rule {rule.name}: {role} {column} is not a column of {parent.label}")
    children = []
    for i, child in enumerate(rule.children):
        table = read_table(conn, *child.table, f"archive rule {rule.name}: children[{i}]")
        found = conn.execute(
            read_sql("archive_foreign_key.sql"),
            {"child_oid": table.oid, "parent_oid": parent.oid, "fk_column": child.fk},
        ).fetchone()
        if found is None:
            raise ArchiveError(
                f"archive rule {rule.name}: children[{i}]: {table.label}.{child.fk} has no foreign key to "
                f"{parent.label}"
            )
        children.append(Child(table, child.fk))
    _refuse_unlisted_references(conn, rule, parent, children)
    return parent, children


def _refuse_unlisted_references(conn: Connection, rule: ArchiveRule, parent: Table, children: list[Child]) -> None:
    """Before any row moves: every foreign key into the rule's tables must be a listed child's, or come
    from a table the rule accepts (`allow_references_from`). Otherwise the source delete fails at the
    first referenced row (after a cross-database copy has committed), or CASCADE / SET NULL silently
    delete or change rows that were never archived."""
    listed = {(c.table.oid, parent.oid, (c.fk,)) for c in children}
    accepted = {f"{schema}.{table}" for schema, table in rule.allow_references_from}
    oids = [parent.oid] + [c.table.oid for c in children]
    names = {parent.oid: parent.label, **{c.table.oid: c.table.label for c in children}}
    for ref in conn.execute(read_sql("archive_references.sql"), {"table_oids": oids}).fetchall():
        if (ref["referencing_oid"], ref["referenced_oid"], tuple(ref["columns"])) in listed:
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
    pk = [r["column_name"] for r in rows if r["in_primary_key"]]
    if len(pk) != 1:
        raise ArchiveError(f"{where} {schema}.{name} needs a single-column primary key (it has {len(pk) or 'none'})")
    return Table(
        schema, name, rows[0]["table_oid"], [(r["column_name"], r["column_type"], r["not_null"]) for r in rows], pk[0]
    )


def _archive_table(rule: ArchiveRule, table: Table) -> sql.Identifier:
    return sql.Identifier(rule.destination.schema_, table.name)


def _prepare_archive(conn: Connection, rule: ArchiveRule, parent: Table, children: list[Child]) -> None:
    """Create the archive schema, tables (same columns, same primary key) and ledger when missing;
    refuse an existing archive table whose columns differ."""
    schema = rule.destination.schema_
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    for table in [parent] + [c.table for c in children]:
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
            continue
        columns = [
            sql.SQL("{} {}{}").format(
                sql.Identifier(name), sql.SQL(config_sql(type_)), sql.SQL(" NOT NULL" if not_null else "")
            )
            for name, type_, not_null in table.columns
        ]
        try:
            conn.execute(
                sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({}))").format(
                    _archive_table(rule, table), sql.SQL(", ").join(columns), sql.Identifier(table.pk)
                )
            )
        except psycopg.Error as exc:  # e.g. a type the archive server does not have
            raise ArchiveError(
                f"archive rule {rule.name}: cannot create {schema}.{table.name}: {str(exc).splitlines()[0]}"
            ) from None
    conn.execute(sql.SQL(read_sql("archive_ledger.sql")).format(schema=sql.Identifier(schema)))


# ---------------------------------------------------------------------------- moving


def _predicate(rule: ArchiveRule, cutoff: dt.datetime) -> sql.Composed:
    parts = [sql.SQL("{} < {}").format(sql.Identifier(rule.age_column), sql.Literal(cutoff))]
    if rule.status_column:
        parts.append(sql.SQL("{} = ANY({})").format(sql.Identifier(rule.status_column), sql.Literal(rule.status_in)))
    if rule.where:
        parts.append(sql.SQL("({})").format(sql.SQL(config_sql(rule.where))))  # written by the DBA who owns the config
    return sql.SQL(" AND ").join(parts)


def _count_candidates(conn, parent: Table, children: list[Child], predicate: sql.Composed) -> dict[str, int]:
    selected = sql.SQL("SELECT {pk} FROM {t} WHERE {p}").format(
        pk=sql.Identifier(parent.pk), t=parent.ident, p=predicate
    )
    counts = {parent.label: one(conn.execute(sql.SQL("SELECT count(*) AS n FROM ({}) AS s").format(selected)))["n"]}
    for child in children:
        query = sql.SQL("SELECT count(*) AS n FROM {c} WHERE {fk} IN ({s})").format(
            c=child.table.ident, fk=sql.Identifier(child.fk), s=selected
        )
        counts[child.table.label] = one(conn.execute(query))["n"]
    conn.rollback()
    return counts


def _move_batches(
    run: ArchiveRun,
    rule: ArchiveRule,
    parent: Table,
    children: list[Child],
    predicate,
    source: Connection,
    archive: Connection | None,
    run_id: str,
    log: Log,
    after_copy: Callable[[], None] | None,
    source_errors: errors_named,
) -> None:
    for table in [parent] + [c.table for c in children]:
        run.tables[table.label] = TableFigures()
    last_key = None
    started = time.monotonic()
    while rule.max_rows is None or run.parent_rows < rule.max_rows:
        limit = rule.batch_size if rule.max_rows is None else min(rule.batch_size, rule.max_rows - run.parent_rows)
        batch_started = time.monotonic()
        with source_errors:
            keys = _lock_batch(source, parent, predicate, last_key, limit)
        if not keys:
            source.rollback()
            break
        if archive is None:
            _move_same_database(run, rule, parent, children, source, keys, run_id)
        else:
            _move_across(run, rule, parent, children, source, archive, keys, run_id, after_copy, source_errors)
        last_key = keys[-1]
        run.batches += 1
        run.longest_batch_ms = max(run.longest_batch_ms, (time.monotonic() - batch_started) * 1000)
        log(f"batch {run.batches}: {run.parent_rows:,} {parent.label} rows archived so far")
    run.seconds = time.monotonic() - started


def _lock_batch(source, parent: Table, predicate, last_key, limit: int) -> list:
    after = (
        sql.SQL("{} > {} AND ").format(sql.Identifier(parent.pk), sql.Literal(last_key))
        if last_key is not None
        else sql.SQL("")
    )
    query = sql.SQL("SELECT {pk} AS k FROM {t} WHERE {after}{p} ORDER BY {pk} LIMIT {n} FOR UPDATE").format(
        pk=sql.Identifier(parent.pk), t=parent.ident, after=after, p=predicate, n=sql.Literal(limit)
    )
    return [row["k"] for row in source.execute(query).fetchall()]


def _hash_sums(conn, table_ident, pk: str, keys: list) -> tuple[int, int]:
    query = sql.SQL("SELECT count(*) AS n, " + KEY_HASH + " AS h FROM {} WHERE {} = ANY(%s)").format(
        sql.Identifier(pk), table_ident, sql.Identifier(pk)
    )
    row = conn.execute(query, (keys,)).fetchone()
    return row["n"], int(row["h"])


def _ledger(conn, rule: ArchiveRule, table: Table, added: int, checksum: int, run_id: str) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (rule, source_table, archive_table, rows_added, key_checksum, run_id)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(sql.Identifier(rule.destination.schema_, "ops_archive_ledger")),
        (rule.name, table.label, f"{rule.destination.schema_}.{table.name}", added, checksum, run_id),
    )


def _move_same_database(run, rule, parent, children, conn, keys, run_id) -> None:
    """One transaction: children first, then parents, each DELETE … RETURNING into the archive."""
    for table, column in [(c.table, c.fk) for c in children] + [(parent, parent.pk)]:
        pk = sql.Identifier(table.pk)
        query = sql.SQL(
            "WITH moved AS (DELETE FROM {src} WHERE {col} = ANY(%s) RETURNING *),"
            " added AS (INSERT INTO {dst} SELECT * FROM moved RETURNING {pk})"
            " SELECT (SELECT count(*) FROM moved) AS removed, (SELECT " + KEY_HASH + " FROM moved) AS removed_h,"
            " (SELECT count(*) FROM added) AS added, (SELECT " + KEY_HASH + " FROM added) AS added_h"
        ).format(pk, pk, pk=pk, src=table.ident, col=sql.Identifier(column), dst=_archive_table(rule, table))
        row = conn.execute(query, (keys,)).fetchone()
        _tally(run, table, row["removed"], int(row["removed_h"]), row["added"], int(row["added_h"]))
        _ledger(conn, rule, table, row["added"], int(row["added_h"]), run_id)
    conn.commit()


def _move_across(run, rule, parent, children, source, archive, keys, run_id, after_copy, source_errors) -> None:
    """Copy the locked rows into the archive and commit there; then delete them at the source."""
    moving = [(parent, keys)]
    for child in children:
        query = sql.SQL("SELECT {pk} AS k FROM {t} WHERE {fk} = ANY(%s) ORDER BY {pk} FOR UPDATE").format(
            pk=sql.Identifier(child.table.pk), t=child.table.ident, fk=sql.Identifier(child.fk)
        )
        with source_errors:
            moving.append((child.table, [r["k"] for r in source.execute(query, (keys,)).fetchall()]))
    present = {}
    for table, table_keys in moving:
        added, added_h = _copy_rows(source, archive, rule, table, table_keys)
        _ledger(archive, rule, table, added, added_h, run_id)
        present[table.label] = _hash_sums(archive, _archive_table(rule, table), table.pk, table_keys)
    archive.commit()  # from here a crash leaves the rows in both places: the next run resolves it
    if after_copy:
        after_copy()
    for table, table_keys in reversed(moving):  # children before parents
        query = sql.SQL(
            "WITH moved AS (DELETE FROM {t} WHERE {pk} = ANY(%s) RETURNING {pk})"
            " SELECT count(*) AS n, " + KEY_HASH + " AS h FROM moved"
        ).format(sql.Identifier(table.pk), t=table.ident, pk=sql.Identifier(table.pk))
        with source_errors:
            row = source.execute(query, (table_keys,)).fetchone()
        _tally(run, table, row["n"], int(row["h"]), *present[table.label])
    with source_errors:
        source.commit()


def _copy_rows(source, archive, rule: ArchiveRule, table: Table, keys: list) -> tuple[int, int]:
    """COPY the rows out of the source into a temporary table in the archive, then upsert them on
    the primary key. Returns how many rows were new to the archive, and their key checksum."""
    if not keys:
        return 0, 0
    target = _archive_table(rule, table)
    archive.execute(sql.SQL("CREATE TEMP TABLE ops_archive_incoming (LIKE {}) ON COMMIT DROP").format(target))
    select = sql.SQL("COPY (SELECT * FROM {} WHERE {} = ANY({})) TO STDOUT").format(
        table.ident, sql.Identifier(table.pk), sql.Literal(keys)
    )
    with source.cursor().copy(select) as out, archive.cursor().copy("COPY ops_archive_incoming FROM STDIN") as into:
        for data in out:
            into.write(data)
    names = [sql.Identifier(name) for name, _, _ in table.columns if name != table.pk]
    update = (
        sql.SQL("DO UPDATE SET ({}) = ROW({})").format(
            sql.SQL(", ").join(names), sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(n) for n in names)
        )
        if names
        else sql.SQL("DO NOTHING")
    )
    query = sql.SQL(
        "WITH up AS (INSERT INTO {t} SELECT * FROM ops_archive_incoming ON CONFLICT ({pk}) {update}"
        " RETURNING {pk} AS k, (xmax = 0) AS inserted)"
        " SELECT count(*) FILTER (WHERE inserted) AS n, coalesce(sum(hashtextextended(k::text, 0)) FILTER (WHERE "
        "inserted), 0) AS h FROM up"
    ).format(t=target, pk=sql.Identifier(table.pk), update=update)
    row = archive.execute(query).fetchone()
    archive.execute("DROP TABLE ops_archive_incoming")
    return row["n"], int(row["h"])


def _tally(run: ArchiveRun, table: Table, removed: int, removed_h: int, archived: int, archived_h: int) -> None:
    figures = run.tables[table.label]
    figures.removed += removed
    figures.removed_checksum += removed_h
    figures.archived += archived
    figures.archived_checksum += archived_h


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
            return Verdict(True, False, f"nothing archived yet by {rule.name}", {})
        ledger = conn.execute(
            sql.SQL(
                "SELECT archive_table, sum(rows_added) AS n, sum(key_checksum) AS h FROM {} GROUP BY archive_table"
            ).format(sql.Identifier(schema, "ops_archive_ledger"))
        ).fetchall()
        for row in ledger:
            table_schema, table_name = row["archive_table"].split(".", 1)
            info = conn.execute(
                read_sql("archive_table_info.sql"), {"schema": table_schema, "table": table_name}
            ).fetchall()
            pk = next((r["column_name"] for r in info if r["in_primary_key"]), None)
            if pk is None:
                problems.append(f"{row['archive_table']} is missing")
                continue
            actual = one(
                conn.execute(
                    sql.SQL("SELECT count(*) AS n, " + KEY_HASH + " AS h FROM {}").format(
                        sql.Identifier(pk), sql.Identifier(table_schema, table_name)
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
        return Verdict(False, False, "; ".join(problems), metadata)
    return Verdict(True, False, f"every archived row is in the archive ({len(ledger)} tables)", metadata)
