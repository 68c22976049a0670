"""The weekly integrity check: amcheck's `bt_index_check` of every btree index, and `verify_heapam`
of every table (PostgreSQL 14+, when `integrity.heap` is set). Both take only AccessShareLock, so
the ERP keeps reading and writing; each relation has its own statement timeout. Findings name the
relation; a server without amcheck gets one sentence on how to install it.
"""

import contextlib
import time
from dataclasses import dataclass, field

import psycopg

from ops_pipelines.adapters.postgres import connect_db, first_line, read_sql
from ops_pipelines.config import DatabaseConfig
from ops_pipelines.errors import OpsError


@dataclass
class IntegrityReport:
    missing_extension: str | None = None  # why nothing was checked: amcheck missing, or not this role's to run
    indexes_checked: int = 0
    tables_checked: int = 0
    bytes_checked: int = 0
    corrupt: list[str] = field(default_factory=list)  # "relation: what amcheck said"
    timed_out: list[str] = field(default_factory=list)
    heap_skipped: str | None = None  # why verify_heapam did not run
    seconds: float = 0.0


def check_integrity(db: DatabaseConfig) -> IntegrityReport:
    report = IntegrityReport()
    started = time.monotonic()
    with contextlib.ExitStack() as session:
        conn = session.enter_context(_session(db))
        installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'").fetchone()
        if installed is None:
            available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'").fetchone()
            report.missing_extension = (
                "amcheck is not installed in this database: run CREATE EXTENSION amcheck; as a superuser"
                if available
                else "amcheck is not available on this server: install the PostgreSQL contrib package "
                "(postgresql-contrib, or postgresqlNN-contrib), then CREATE EXTENSION amcheck;"
            )
            return report
        heap = db.integrity.heap
        if heap and conn.info.server_version < 140000:
            report.heap_skipped = "verify_heapam needs PostgreSQL 14 or newer"
            heap = False
        denied = _not_executable(
            conn,
            ["bt_index_check(regclass)"]
            + (["verify_heapam(regclass, boolean, boolean, text, bigint, bigint)"] if heap else []),
        )
        if denied:
            report.missing_extension = denied  # a role that may not run amcheck: one warning, not N "corrupt"
            return report
        relations = [
            r for r in conn.execute(read_sql("integrity_relations.sql")).fetchall() if r["kind"] == "index" or heap
        ]
        for relation in relations:
            name = f"{relation['name']} ({relation['kind']})"
            try:
                _check(conn, relation, report)
                report.bytes_checked += relation["bytes"]
            except psycopg.errors.QueryCanceled:
                report.timed_out.append(name)
            except psycopg.errors.UndefinedTable:
                continue  # dropped since the list was read
            except psycopg.errors.InsufficientPrivilege as exc:  # not a finding about the relation
                report.timed_out.append(f"{name}: not checked ({first_line(exc)})")
            except psycopg.OperationalError as exc:
                # Badly damaged pages can end the server process checking them (the server then
                # restarts its sessions): that is a finding about this relation; go on with a new session.
                report.corrupt.append(f"{name}: the server process checking it ended ({first_line(exc)})")
                session.close()
                conn = _reconnect(db, session)
            except psycopg.Error as exc:
                report.corrupt.append(f"{name}: {first_line(exc)}")
    report.seconds = time.monotonic() - started
    return report


def _not_executable(conn, functions: list[str]) -> str | None:
    """Why this role may not run amcheck's `functions` (their EXECUTE is revoked from PUBLIC), or None."""
    schema = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'"
    ).fetchone()["nspname"]
    role = conn.execute("SELECT current_user AS r").fetchone()["r"]
    denied = [
        f
        for f in functions
        if not conn.execute(
            "SELECT has_function_privilege(format('%%I.%%s', %s::text, %s::text), 'EXECUTE') AS ok", (schema, f)
        ).fetchone()["ok"]
    ]
    if not denied:
        return None
    grants = " ".join(f"GRANT EXECUTE ON FUNCTION {schema}.{f} TO {role};" for f in denied)
    names = " / ".join(f.split("(")[0] for f in denied)
    return f"not checked: role {role} may not execute {names} ({grants})"


def _session(db: DatabaseConfig):
    return connect_db(db, "integrity", statement_timeout=db.integrity.index_timeout, autocommit=True)


def _reconnect(db: DatabaseConfig, session: contextlib.ExitStack, seconds: float = 60.0):
    """A new session once the server accepts connections again (after a crash it recovers first)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return session.enter_context(_session(db))
        except OpsError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _check(conn, relation: dict, report: IntegrityReport) -> None:
    if relation["kind"] == "index":
        conn.execute("SELECT bt_index_check(%s::regclass)", (relation["oid"],))
        report.indexes_checked += 1
        return
    rows = conn.execute(
        "SELECT blkno, offnum, msg FROM verify_heapam(%s::regclass) LIMIT 5", (relation["oid"],)
    ).fetchall()
    report.tables_checked += 1
    for row in rows:
        report.corrupt.append(f"{relation['name']} (table): block {row['blkno']}, item {row['offnum']}: {row['msg']}")
