"""Verifying an archive: the ledger's totals against what the archive tables hold."""

from psycopg import sql

from ops_pipelines.adapters.postgres import (
    connect,
    one,
    read_sql,
)
from ops_pipelines.config import ArchiveRule, DatabaseConfig
from ops_pipelines.core.archive.model import DETACHING, KEY_HASH, PURGED, Table
from ops_pipelines.core.archive.tree import primary_key
from ops_pipelines.core.verdict import Verdict


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
            key = primary_key(info)
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
