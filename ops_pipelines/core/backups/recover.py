"""Recovery into a named database: the runbook's restore script, done safely.

The backup (the newest one standing proven by a restore test, core/backups/proof.py, unless named) is
checked against its manifest's sha256, restored into `<target>__restoring` on the target server
WITH its owners and privileges, and its row counts are verified against the manifest. Only then
does it take the target's name:

- a new target: `<target>__restoring` is renamed into place;
- an existing target that holds tables: refused, unless `replace`; then the target is closed to new
  connections, its sessions are ended, and in one transaction it is renamed
  `<target>__replaced_<time of the swap>` (kept: the DBA drops it when satisfied) and
  `<target>__restoring` takes its name.

Safe to retry and to kill:
- one recovery into a target at a time, per server: an advisory lock held by this run's admin
  session for its whole length (it dies with the process); a second one is refused, naming the first;
- every derived name is measured in UTF-8 bytes against PostgreSQL's 63 and refused up front
  (PostgreSQL would cut them, and two cut names can collide);
- before closing the target, the run records the target's OID in the comment of its own
  `<target>__restoring`; it re-opens only what it closed (found by OID, whatever its name now); a
  run killed meanwhile leaves that record, and the next recovery of the target (or `ops-pipelines
  backups`) re-opens the database it names and drops the leftover. A kept copy left closed by a
  kill just after the swap is re-opened the same way;
- any failure before the rename — a damaged dump, an unknown stamp, a full disk, a server older
  than the dump, a kill — leaves the target as it was; `<target>__restoring` is dropped, or by the
  next run; the decompressed dump is removed, or by the next run once its owner is gone.
"""

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from ops_pipelines.adapters.postgres import advisory_lock_holder, connect, describe_dsn, one, with_dbname
from ops_pipelines.adapters.sandbox import RestoreTarget
from ops_pipelines.adapters.sandbox.local_cluster import owned, remove_leftovers
from ops_pipelines.adapters.storage import BackupStorage, local_storage, offsite_storage
from ops_pipelines.config import DatabaseConfig, OpsConfig
from ops_pipelines.core.backups.catalog import BackupEntry, list_backups, read_manifest, stamp_for, stamp_time
from ops_pipelines.core.backups.manifest import ManifestError
from ops_pipelines.core.backups.offsite_trust import offsite_manifest_problem
from ops_pipelines.core.backups.proof import Judgement, judge
from ops_pipelines.core.backups.restore import (
    RestoreReport,
    pg_restore_into,
    read_globals,
    verified_copy,
    verify_counts,
)
from ops_pipelines.core.backups.roles import apply_missing_roles
from ops_pipelines.errors import OpsError

Log = Callable[[str], None]
RESTORING = "__restoring"
REPLACED = "__replaced_"
_KEPT_NAME = r"__replaced_\d{8}T\d{6}Z$"  # <target>__replaced_<time of the swap, a stamp>
NAME_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1: longer names are cut, silently
LOCK_CLASS = "ops_pipelines/recover"  # advisory lock (hashtext(LOCK_CLASS), hashtext(target))
_CLOSED_NOTE = "ops_pipelines recover closed database oid {oid} to connections at {at}"
_CLOSED_OID = re.compile(r"^ops_pipelines recover closed database oid (\d+) ")


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


def judge_backups(config: OpsConfig, storage: BackupStorage, entries: list[BackupEntry]) -> dict[str, Judgement]:
    """Each tested backup's standing (core/backups/proof.py), by stamp. Reading from S3, a proof standing in
    the local store counts too (the same bytes, when the manifests agree; `recover` checks that)."""
    judged = {e.stamp: judge(storage, e) for e in entries if e.verified or e.failed}
    local = local_storage(config)
    if storage is local or storage.trusted or not entries:
        return judged
    try:
        local_entries = {e.stamp: e for e in list_backups(local, entries[0].database)}
    except OpsError:
        return judged  # the local store may be gone in a disaster: S3's own evidence still counts
    for stamp, local_entry in local_entries.items():
        mine = judged.get(stamp)
        if (mine is None or mine.proof is None) and (local_entry.verified or local_entry.failed):
            standing = judge(local, local_entry)
            if standing.proof is not None or mine is None:
                judged[stamp] = standing
    return judged


def choose_backup(
    entries: list[BackupEntry], stamp: str | None, judged: dict[str, Judgement], log: Log = lambda message: None
) -> BackupEntry:
    """`stamp`, or the newest complete backup standing proven (`judged`: from `judge_backups`); a
    newer backup whose proof was withdrawn is named, and why."""
    if stamp:
        found = [e for e in entries if e.stamp == stamp]
        if not found:
            known = ", ".join(e.stamp for e in entries[-5:]) or "none"
            raise RecoveryRefused(f"no backup {stamp} (the newest: {known})")
        if found[0].refused:
            raise RecoveryRefused(f"backup {stamp}: {found[0].refused}")
        if not found[0].complete:
            raise RecoveryRefused(f"backup {stamp} has no manifest: it did not complete, refusing to restore it")
        standing = judged.get(stamp)
        if standing is not None and standing.proof is None:
            log(f"note: backup {stamp} is not proven: {standing.why_not}; restoring it as asked")
        return found[0]
    passed_over = []
    for entry in reversed([e for e in entries if e.complete]):
        standing = judged.get(entry.stamp)
        if standing is not None and standing.proof is not None:
            for other in passed_over:
                log(f"passing over backup {other.entry.stamp}: {other.why_not}")
            return entry
        if standing is not None:
            passed_over.append(standing)
    why = f"; backup {passed_over[0].entry.stamp} is not proven: {passed_over[0].why_not}" if passed_over else ""
    raise RecoveryRefused(
        "no backup stands proven restorable by a restore test" + why + ": name one with --backup STAMP "
        "(ops-pipelines backups DATABASE lists them)"
    )


def derived_names(target: str, replace: bool, now: dt.datetime) -> tuple[str, str | None]:
    """`<target>__restoring`, and with `replace` the kept copy's name (the time of the swap, so a retry
    never meets an earlier run's copy); refused when any would not fit PostgreSQL's 63 bytes."""
    restoring = target + RESTORING
    replaced = f"{target}{REPLACED}{stamp_for(now)}" if replace else None
    for name in [target, restoring] + ([replaced] if replaced else []):
        size = len(name.encode("utf-8"))
        if size > NAME_BYTES:
            limit = NAME_BYTES - (size - len(target.encode("utf-8")))
            raise RecoveryRefused(
                f"target name {target!r} is {len(target.encode('utf-8'))} bytes in UTF-8: {name!r} would be {size}, "
                f"over PostgreSQL's {NAME_BYTES} (a target of at most {limit} bytes fits)"
            )
    return restoring, replaced


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
    local: BackupStorage | None = None,
    how_to_replace: str = "pass --replace",
) -> Recovery:
    """`local`: the trusted local store, against which a backup read from S3 is checked when it holds it.
    `how_to_replace`: how the caller's user asks for a swap (the CLI's flag, the launchpad's key)."""
    server = with_dbname(target_dsn or db.dsn.get_secret_value(), "postgres")
    restoring, _ = derived_names(target, replace, dt.datetime.now(dt.UTC))
    try:
        manifest = read_manifest(storage, entry)
    except ManifestError as exc:
        raise RecoveryRefused(f"{exc}; target untouched") from None
    if not storage.trusted and local is not None:
        _check_against_local(storage, local, entry, log)
    outcome = Recovery(db.name, target, entry.stamp)
    for path in remove_leftovers():
        log(f"removed {path}, left by an interrupted restore")
    # One admin session for the whole recovery: it holds the advisory lock that keeps a second
    # recovery into this target out, and the lock dies with it (a kill releases it).
    with connect(server, autocommit=True, statement_timeout="1 min", purpose="recover") as admin:
        _lock(admin, target, server)
        repair_interrupted(admin, target, log)
        version = admin.info.server_version // 10000
        if version < manifest.server_major:
            raise RecoveryRefused(
                f"{describe_dsn(server)} runs PostgreSQL {version}, older than the dump's {manifest.server_major}"
            )
        exists = _exists(admin, target)
        if exists and not replace and _holds_tables(with_dbname(server, target)):
            raise RecoveryRefused(
                f"database {target} exists and holds tables: {how_to_replace} to swap it (the old one is kept), "
                "or choose another target"
            )
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(restoring)))
        try:
            if with_roles:
                _create_missing_roles(storage, manifest, server, outcome, log)
            _restore(db, storage, manifest, with_dbname(server, restoring), jobs, outcome, log)
            swap_replace = replace and _exists(admin, target)
            outcome.replaced = _swap(admin, target, restoring, swap_replace, log)
        except BaseException:
            _drop_quietly(server, restoring, log)
            raise
    return outcome


def _check_against_local(storage: BackupStorage, local: BackupStorage, entry: BackupEntry, log: Log) -> None:
    try:
        held = {e.stamp: e for e in list_backups(local, entry.database) if e.complete}
    except OpsError:
        held = {}
    if entry.stamp not in held:
        log(
            f"note: backup {entry.stamp} is not in the local store: its S3 manifest is checked against its own "
            "names and the dump's sha256 only (set OPS_PIPELINES_BACKUP_HMAC_KEY to detect a planted copy)"
        )
        return
    try:
        trusted = read_manifest(local, held[entry.stamp])
    except ManifestError as exc:
        raise RecoveryRefused(f"{exc}; target untouched") from None
    problem = offsite_manifest_problem(storage, entry, trusted)
    if problem:
        raise RecoveryRefused(f"{problem}; target untouched")


def _lock(admin, target: str, server: str) -> None:
    keys = one(admin.execute("SELECT hashtext(%s) AS class_key, hashtext(%s) AS target_key", (LOCK_CLASS, target)))
    key = (keys["class_key"], keys["target_key"])
    if one(admin.execute("SELECT pg_try_advisory_lock(%s::int4, %s::int4) AS ok", key))["ok"]:
        return
    who = advisory_lock_holder(admin, key, this_database_only=False) or "another session"
    raise RecoveryRefused(
        f"another recovery into {target} is running on {describe_dsn(server)}: {who}; wait for it to finish "
        "(nothing was changed)"
    )


def repair_interrupted(admin, target: str, log: Log) -> list[str]:
    """Undo what a killed recovery into `target` left (the caller holds the target's lock): re-open
    the database its record says it closed and any kept copy of the target left closed, then drop
    its `<target>__restoring`. Returns what was done, one line each."""
    done = []
    restoring = target + RESTORING
    row = admin.execute(
        "SELECT oid, shobj_description(oid, 'pg_database') AS note FROM pg_database WHERE datname = %s",
        (restoring,),
    ).fetchone()
    closed = _CLOSED_OID.match(row["note"] or "") if row else None
    if closed:
        name = _reopen(admin, int(closed.group(1)))
        if name:
            done.append(f"re-opened {name} to connections: an interrupted recovery had closed it")
    kept = admin.execute(
        "SELECT datname FROM pg_database WHERE NOT datallowconn AND starts_with(datname, %s)"
        " AND length(datname) = length(%s) + 16",
        (target + REPLACED, target + REPLACED),
    ).fetchall()
    for k in kept:
        admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(sql.Identifier(k["datname"])))
        done.append(f"re-opened {k['datname']} (a kept copy) to connections: an interrupted recovery had closed it")
    if row:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(restoring)))
        done.append(f"dropped {restoring}, left by an interrupted recovery")
    for line in done:
        log(line)
    return done


def repair_server(server: str, log: Log) -> list[str]:
    """`ops-pipelines backups`: repair every target on `server` that a killed recovery left closed
    (each under its lock; one that a running recovery holds is left to it)."""
    done: list[str] = []
    with connect(server, autocommit=True, statement_timeout="30s", purpose="recover") as admin:
        recorded = admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s AND shobj_description(oid, 'pg_database') LIKE %s",
            ("%" + RESTORING, "ops_pipelines recover closed database oid %"),
        ).fetchall()
        kept_closed = admin.execute(  # a kill just after the swap: the kept copy is still closed
            "SELECT datname FROM pg_database WHERE NOT datallowconn AND datname ~ %s", (_KEPT_NAME,)
        ).fetchall()
        targets = {r["datname"][: -len(RESTORING)] for r in recorded}
        targets |= {r["datname"][: -len(REPLACED) - 16] for r in kept_closed}
        for target in sorted(targets):
            if not one(
                admin.execute("SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s)) AS ok", (LOCK_CLASS, target))
            )["ok"]:
                continue  # a recovery is running: it owns its leftovers
            try:
                done += repair_interrupted(admin, target, log)
            finally:
                admin.execute("SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", (LOCK_CLASS, target))
    return done


def _reopen(admin, oid: int) -> str | None:
    """Allow connections to the database `oid` again (whatever its name now); its name, or None when
    it is gone or already open."""
    row = admin.execute("SELECT datname, datallowconn FROM pg_database WHERE oid = %s", (oid,)).fetchone()
    if row is None or row["datallowconn"]:
        return None
    admin.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(sql.Identifier(row["datname"])))
    return row["datname"]


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
    # An owned directory: a killed run's decompressed dump is removed by the next run (remove_leftovers)
    with owned(db.name, "recover") as folder:
        archive = Path(folder) / "archive.dump"
        log(f"backup {manifest.dump_key}: reading and checking its sha256 ({manifest.dump_bytes / 1e6:,.1f} MB)")
        try:
            verified_copy(storage, manifest, archive)
        except OSError as exc:  # a full disk, a read-only temporary directory: one line, not a traceback
            raise RecoveryRefused(
                f"cannot write the decompressed dump in {folder}: {exc.strerror or exc}; target untouched"
            ) from None
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


def _swap(admin, target: str, restoring: str, replace: bool, log: Log) -> str | None:
    if not replace:
        admin.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(restoring), sql.Identifier(target))
        )
        log(f"{restoring} renamed to {target}")
        return None
    now = dt.datetime.now(dt.UTC)
    _, replaced = derived_names(target, True, now)
    assert replaced is not None  # derived with replace
    while _exists(admin, replaced):  # a kept copy from a swap in this same second
        now += dt.timedelta(seconds=1)
        _, replaced = derived_names(target, True, now)
        assert replaced is not None
    row = one(admin.execute("SELECT oid, datallowconn FROM pg_database WHERE datname = %s", (target,)))
    closed_oid = row["oid"] if row["datallowconn"] else None  # closed by the DBA already: not ours to re-open
    if closed_oid is not None:
        # The record first, then the close: a kill between them leaves an open target and a record
        # the next run finds harmless; a kill after leaves the record that says what to re-open.
        note = _CLOSED_NOTE.format(oid=closed_oid, at=now.isoformat(timespec="seconds"))
        admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(restoring), sql.Literal(note)))
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
        with admin.transaction():  # both renames and the record's removal, or none
            admin.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(target), sql.Identifier(replaced))
            )
            admin.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(restoring), sql.Identifier(target))
            )
            admin.execute(sql.SQL("COMMENT ON DATABASE {} IS NULL").format(sql.Identifier(target)))
    finally:
        if closed_oid is not None:
            _reopen(admin, closed_oid)  # by OID: the target if the swap failed, the kept copy if it happened
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


def describe_backups(entries: list[BackupEntry], judged: dict[str, Judgement], now: dt.datetime) -> list[str]:
    """`ops-pipelines backups`: one line per backup, newest first; "verified" only while it stands
    proven (core/backups/proof.py), else why not."""
    lines = []
    for e in reversed(entries):
        standing = judged.get(e.stamp)
        if e.refused:
            state = "REFUSED"
        elif standing is not None and standing.proof is not None:
            state = "verified"
        elif not e.complete:
            state = "INCOMPLETE (no manifest)" if e.dump is not None else "INCOMPLETE (no dump)"
        elif standing is not None:
            state = "NOT PROVEN"
        else:
            state = "complete"
        size = f"{e.dump.bytes / 1e6:,.1f} MB" if e.dump else "-"
        age = now - stamp_time(e.stamp)
        line = f"{e.stamp}  {state:<24}  {size:>12}  {age.total_seconds() / 3600:,.1f} h old"
        why = e.refused or (standing.why_not if standing is not None and standing.proof is None else None)
        lines.append(line + (f"  ({why})" if why and e.complete or e.refused else ""))
    return lines
