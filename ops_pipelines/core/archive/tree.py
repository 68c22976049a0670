"""Checking a rule against the catalog before any row moves: its tree of tables, their keys, the
foreign keys that join them, and the archive tables made to match.
"""

import psycopg
from psycopg import sql

from ops_pipelines.adapters.postgres import (
    Connection,
    config_sql,
    one,
    read_sql,
)
from ops_pipelines.config import ArchiveRule
from ops_pipelines.core.archive.model import ArchiveError, Node, Table


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


def refuse_archiving_into_itself(rule: ArchiveRule, tree: list[Node], where: str) -> None:
    """An archive table that is its own source table would "move" rows onto themselves: every run
    would report them archived while the table keeps them all. Refused before any row moves."""
    for node in tree:
        if (rule.destination.schema_, node.table.name) == (node.table.schema, node.table.name):
            raise ArchiveError(
                f"archive rule {rule.name}: the archive table of {node.table.label} in {where} is {node.table.label} "
                "itself: choose another destination.schema"
            )


def same_database(source: Connection, archive: Connection) -> bool:
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
    key = primary_key(rows)
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


def primary_key(rows) -> tuple[str, ...]:
    """The primary key's columns in the key's order, from archive_table_info.sql's rows; () for none."""
    return tuple(r["column_name"] for r in sorted(rows, key=lambda r: r["key_position"] or 0) if r["key_position"])


def archive_table(rule: ArchiveRule, table: Table) -> sql.Identifier:
    return sql.Identifier(rule.destination.schema_, table.name)


def prepare_archive(conn: Connection, rule: ArchiveRule, tree: list[Node]) -> None:
    """Create the archive schema, tables (same columns, the same key as their primary key) and ledger
    when missing; refuse an existing archive table whose columns differ."""
    schema = rule.destination.schema_
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    for table in (node.table for node in tree if not rule.purge):  # a purge keeps only the ledger
        create_archive_table(conn, rule, table)
    conn.execute(sql.SQL(read_sql("archive_ledger.sql")).format(schema=sql.Identifier(schema)))


def create_archive_table(conn: Connection, rule: ArchiveRule, table: Table) -> None:
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
                archive_table(rule, table), sql.SQL(", ").join(columns), table.key_columns
            )
        )
    except psycopg.Error as exc:  # e.g. a type the archive server does not have
        raise ArchiveError(
            f"archive rule {rule.name}: cannot create {schema}.{table.name}: {str(exc).splitlines()[0]}"
        ) from None
