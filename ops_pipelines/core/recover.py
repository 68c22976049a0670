"""Recovery into a named database: the runbook's restore script, done safely.

The backup (the newest one a restore test proved, unless named) is checked against its manifest's
sha256, restored into `<target>__restoring` on the target server WITH its owners and privileges,
and its row counts are verified against the manifest. Only then does it take the target's name:

- a new target: `<target>__restoring` is renamed into place;
- an existing target that holds tables: refused, unless `replace`; then the target is closed to new
  connections, its sessions are ended, and in one transaction it is renamed `<target>__replaced_<stamp>`
  (kept: the DBA drops it when satisfied) and `<target>__restoring` takes its name.

Any failure before the rename — a damaged dump, an unknown stamp, a full disk, a server older than
the dump, a kill — leaves the target as it was; `<target>__restoring` is dropped, or by the next run.
"""

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from ops_pipelines.config import DatabaseConfig, OpsConfig
from ops_pipelines.core.backup_catalog import BackupEntry, list_backups, read_manifest, stamp_time
from ops_pipelines.core.restore import RestoreReport, pg_restore_into, read_globals, verified_copy, verify_counts
from ops_pipelines.core.roles import apply_missing_roles
from ops_pipelines.errors import OpsError
from ops_pipelines.resources.postgres import connect, describe_dsn, one, with_dbname
from ops_pipelines.resources.sandbox import RestoreTarget
from ops_pipelines.resources.storage import BackupStorage, local_storage, offsite_storage

Log = Callable[[str], None]
RESTORING = "__restoring"
REPLACED = "__replaced_"


class RecoveryRefused(OpsError):
    """The recovery cannot or may not run; nothing on the target server was changed."""


@dataclass
class Recovery:
    database: str
    target: str
    backup: str
    restored_seconds: float = 0.0
    tables_checked: int = 0
    rows_checked: int = 0
    replaced: str | None = None  # the old database's new name, with replace
    notes: list[str] = field(default_factory=list)


def backup_store(config: OpsConfig, source: str) -> BackupStorage:
    if source == "local":
        return local_storage(config)
    offsite = offsite_storage(config)
    if offsite is None:
        raise OpsError("--from s3: backup_store.s3 is not configured")
    return offsite


def verified_stamps(config: OpsConfig, storage: BackupStorage, database: str) -> set[str]:
    """Stamps a restore test proved: their markers in the local store (and in S3, when reading from it)."""
    stores = {id(storage): storage, id(local := local_storage(config)): local}
    stamps = set()
    for store in stores.values():
        try:
            stamps |= {e.stamp for e in list_backups(store, database) if e.verified}
        except OpsError:
            continue  # the local store may be gone in a disaster: S3's own markers still count
    return stamps


def choose_backup(entries: list[BackupEntry], stamp: str | None, verified: set[str]) -> BackupEntry:
    """`stamp`, or the newest complete backup a restore test proved (`verified` stamps)."""
    if stamp:
        found = [e for e in entries if e.stamp == stamp]
        if not found:
            known = ", ".join(e.stamp for e in entries[-5:]) or "none"
            raise RecoveryRefused(f"no backup {stamp} (the newest: {known})")
        if not found[0].complete:
            raise RecoveryRefused(f"backup {stamp} has no manifest: it did not complete, refusing to restore it")
        return found[0]
    proven = [e for e in entries if e.complete and e.stamp in verified]
    if not proven:
        raise RecoveryRefused(
            "no backup was proven restorable by a restore test: name one with --backup STAMP "
            "(ops-pipelines backups DATABASE lists them)"
        )
    return proven[-1]


def recover(
    db: DatabaseConfig,
    storage: BackupStorage,
    entry: BackupEntry,
    target: str,
    target_dsn: str | None = None,
    *,
    replace: bool = False,
    jobs: int = 2,
    with_roles: bool = False,
    log: Log = lambda message: None,
) -> Recovery:
    server = with_dbname(target_dsn or db.dsn.get_secret_value(), "postgres")
    restoring = target + RESTORING
    if len(restoring) > 63:
        raise RecoveryRefused(f"target name {target} is too long: {restoring} must fit PostgreSQL's 63 characters")
    manifest = read_manifest(storage, entry)
    outcome = Recovery(db.name, target, entry.stamp)
    with connect(server, autocommit=True, statement_timeout="1 min", purpose="recover") as admin:
        version = admin.info.server_version // 10000
        if version < manifest.server_major:
            raise RecoveryRefused(
                f"{describe_dsn(server)} runs PostgreSQL {version}, older than the dump's {manifest.server_major}"
            )
        exists = _exists(admin, target)
        if exists and not replace and _holds_tables(with_dbname(server, target)):
            raise RecoveryRefused(
                f"database {target} exists and holds tables: pass --replace to swap it (the old one is kept), "
                "or choose another --target"
            )
        if _exists(admin, restoring):
            log(f"dropping {restoring}, left by an interrupted recovery")
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(restoring)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(restoring)))
    try:
        if with_roles:
            _create_missing_roles(storage, manifest, server, outcome, log)
        _restore(db, storage, manifest, with_dbname(server, restoring), jobs, outcome, log)
        with connect(server, autocommit=True, statement_timeout="1 min", purpose="recover") as admin:
            outcome.replaced = _swap(admin, target, restoring, entry.stamp, replace and _exists(admin, target), log)
    except BaseException:
        _drop_quietly(server, restoring, log)
        raise
    return outcome


def _create_missing_roles(storage, manifest, server: str, outcome: Recovery, log: Log) -> None:
    """The backup's roles that the target server lacks, created without passwords; existing ones untouched."""
    globals_sql = read_globals(storage, manifest)
    if globals_sql is None:
        raise RecoveryRefused(f"backup {outcome.backup} holds no roles file (taken before roles were saved)")
    roles = apply_missing_roles(server, globals_sql)
    if roles.errors:
        raise RecoveryRefused(f"creating the backup's roles failed: {roles.errors[0]}; target untouched")
    outcome.notes.append(f"roles created (no password; set one): {', '.join(roles.created) or 'none'}")
    log(outcome.notes[-1])


def _restore(db, storage, manifest, dsn: str, jobs: int, outcome: Recovery, log: Log) -> None:
    with tempfile.TemporaryDirectory(prefix=f"ops_recover_{db.name}_") as folder:
        archive = Path(folder) / "archive.dump"
        log(f"backup {manifest.dump_key}: reading and checking its sha256 ({manifest.dump_bytes / 1e6:,.1f} MB)")
        verified_copy(storage, manifest, archive)
        log(f"restoring into {describe_dsn(dsn)} with {jobs} jobs, owners and privileges included")
        started = time.monotonic()
        errors = pg_restore_into(archive, RestoreTarget(dsn, None, describe_dsn(dsn)), jobs, owners=True)
        outcome.restored_seconds = time.monotonic() - started
    if errors:
        hint = " (--with-roles creates the backup's missing roles)" if any("role" in e for e in errors) else ""
        raise RecoveryRefused(
            f"pg_restore reported {len(errors)} errors, the first: {errors[0]}{hint}; target untouched"
        )
    report = RestoreReport(db.name, outcome.backup, "recovery")
    verify_counts(dsn, manifest, [], report)
    if report.mismatches:
        first = report.mismatches[0]
        raise RecoveryRefused(
            f"{len(report.mismatches)} tables differ from the manifest, the first: {first.table}: {first.problem}; "
            "target untouched"
        )
    outcome.tables_checked, outcome.rows_checked = report.tables_checked, report.rows_checked
    log(f"verified: {report.tables_checked} tables, {report.rows_checked:,} rows match the manifest")


def _swap(admin, target: str, restoring: str, stamp: str, replace: bool, log: Log) -> str | None:
    if not replace:
        admin.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(restoring), sql.Identifier(target))
        )
        log(f"{restoring} renamed to {target}")
        return None
    replaced = f"{target}{REPLACED}{stamp}"[:63]
    admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(target)))
    try:
        ended = one(
            admin.execute(
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (target,),
            )
        )["n"]
        log(f"{target}: closed to new connections, {ended} sessions ended")
        _wait_for_no_sessions(admin, target)
        with admin.transaction():  # both renames, or neither
            admin.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(target), sql.Identifier(replaced))
            )
            admin.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(restoring), sql.Identifier(target))
            )
    finally:
        name = replaced if _exists(admin, replaced) else target
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(sql.Identifier(name)))
    log(f"{target} replaced; the old database is kept as {replaced}")
    return replaced


def _wait_for_no_sessions(admin, target: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while one(admin.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = %s", (target,)))["n"]:
        if time.monotonic() > deadline:
            raise RecoveryRefused(f"{target} still has sessions after {timeout:.0f} s; nothing was swapped")
        time.sleep(0.2)


def _exists(admin, name: str) -> bool:
    return one(admin.execute("SELECT count(*) AS n FROM pg_database WHERE datname = %s", (name,)))["n"] > 0


def _holds_tables(dsn: str) -> bool:
    with connect(dsn, statement_timeout="30s", purpose="recover") as conn:
        query = (
            "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg_toast%'"
        )
        return one(conn.execute(query))["n"] > 0


def _drop_quietly(server: str, name: str, log: Log) -> None:
    try:
        with connect(server, autocommit=True, statement_timeout="1 min", purpose="recover") as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        log(f"dropped {name}: the target is as it was")
    except (OpsError, psycopg.Error) as exc:
        log(f"could not drop {name} ({exc}): the next recovery drops it")


def describe_backups(entries: list[BackupEntry], verified: set[str], now: dt.datetime) -> list[str]:
    """`ops-pipelines backups`: one line per backup, newest first."""
    lines = []
    for e in reversed(entries):
        state = "verified" if e.stamp in verified else ("complete" if e.complete else "INCOMPLETE (no manifest)")
        size = f"{e.dump.bytes / 1e6:,.1f} MB" if e.dump else "-"
        age = now - stamp_time(e.stamp)
        lines.append(f"{e.stamp}  {state:<24}  {size:>12}  {age.total_seconds() / 3600:,.1f} h old")
    return lines
