"""A restore test: prove a backup restores, and that it holds exactly what the manifest says.

1. Read the manifest (a backup without one is refused), then read the dump once: hash it and
   decompress it to a temporary file. A checksum or size mismatch stops here, before any restore.
2. Open a sandbox (an empty database on a server at least as new as the dump's) and run
   `pg_restore --jobs N` into it; any error pg_restore reports fails the test.
3. Count every table of the manifest in the restored database and compare; run the configured
   sanity queries (each must return a row).
4. Leave the evidence beside the backup (core/backups/proof.py): `<stamp>.restore-ok.json` when everything
   matched, else `<stamp>.restore-failed.json` — a failed test withdraws the backup's proof
   everywhere (retention, the checks, the CLI, the report). A sandbox that could not start is no
   evidence about the backup and leaves none.

The sandbox and the temporary file are removed in every path, failures and cancellation included.
"""

import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.postgres import config_sql, connect, first_line, one
from ops_pipelines.adapters.programs import pg_restore
from ops_pipelines.adapters.sandbox import RestoreSandbox, RestoreTarget
from ops_pipelines.adapters.sandbox.local_cluster import owned, remove_leftovers
from ops_pipelines.adapters.storage import BackupStorage, StorageError
from ops_pipelines.config import DatabaseConfig, parse_qualified_name
from ops_pipelines.core.backups.catalog import BackupEntry, read_manifest, stamp_time
from ops_pipelines.core.backups.manifest import BackupManifest, ManifestError
from ops_pipelines.core.backups.proof import record_result
from ops_pipelines.core.backups.roles import apply_missing_roles
from ops_pipelines.core.backups.stored_dump import DumpDamaged, StoredDump
from ops_pipelines.core.verdict import Verdict
from ops_pipelines.errors import OpsError

Log = Callable[[str], None]


class RestoreRefused(OpsError):
    """The backup cannot be restore-tested: missing manifest, damaged or truncated dump."""


@dataclass(frozen=True)
class Mismatch:
    table: str
    expected_rows: int | None  # None: not in the manifest (a sanity query)
    restored_rows: int | None  # None: the table is missing after the restore
    problem: str


@dataclass
class RestoreReport:
    database: str
    backup: str
    sandbox: str
    restore_seconds: float = 0.0
    verify_seconds: float = 0.0
    tables_checked: int = 0
    rows_checked: int = 0
    restore_errors: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    sanity_queries_passed: int = 0
    finished_at: dt.datetime | None = None
    owners_checked: bool = False  # restored WITH owners and privileges, after the backup's roles

    @property
    def passed(self) -> bool:
        return not self.restore_errors and not self.mismatches

    def to_data(self) -> dict:
        data = asdict(self)
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        data["passed"] = self.passed
        return data


def run_restore_test(
    db: DatabaseConfig,
    storage: BackupStorage,
    entry: BackupEntry,
    sandbox: RestoreSandbox,
    *,
    log: Log = lambda message: None,
    after_restore: Callable[[str], None] | None = None,
    trusted_manifest: BackupManifest | None = None,
) -> RestoreReport:
    """Restore `entry` into `sandbox` and verify it; `after_restore(dsn)` is a hook for tests.
    `trusted_manifest`: what the dump must match, from this instance's own records (the off-site
    drill passes the local manifest), instead of the manifest `storage` holds."""
    if entry.manifest is None:
        raise RestoreRefused(f"backup {entry.stamp} of {db.name} has no manifest: refusing to test it")
    try:
        manifest = trusted_manifest or read_manifest(storage, entry)
    except ManifestError as exc:  # not this backup's manifest, or not signed: nothing to bind evidence to
        raise RestoreRefused(str(exc)) from None
    report = RestoreReport(db.name, entry.stamp, sandbox.kind)
    try:
        _test(db, storage, entry, manifest, sandbox, report, log, after_restore)
    except RestoreRefused as exc:  # the bytes are damaged, truncated or not the manifest's: evidence
        report.restore_errors.append(str(exc))
        report.finished_at = dt.datetime.now(dt.UTC)
        try:
            record_result(storage, manifest, entry.stamp, report.to_data(), passed=False)
        except StorageError as record_exc:  # the refusal is what the DBA must read; say both
            raise RestoreRefused(f"{exc}; and its failure could not be recorded: {record_exc}") from None
        raise
    report.finished_at = dt.datetime.now(dt.UTC)
    record_result(storage, manifest, entry.stamp, report.to_data(), passed=report.passed)
    return report


def _test(
    db: DatabaseConfig,
    storage: BackupStorage,
    entry: BackupEntry,
    manifest: BackupManifest,
    sandbox: RestoreSandbox,
    report: RestoreReport,
    log: Log,
    after_restore: Callable[[str], None] | None,
) -> None:
    for path in remove_leftovers():
        log(f"removed {path}, left by an interrupted restore test")
    globals_sql = read_globals(storage, manifest)
    with owned(db.name, "dump") as tmp:
        archive = tmp / "archive.dump"
        # The dump is checked and decompressed while the sandbox starts (initdb and start take seconds
        # a restore test need not wait for); nothing is restored before the check has passed.
        with in_background(lambda stop: verified_copy(storage, manifest, archive, stop)) as copied:
            with sandbox.open(manifest.server_major) as target:
                copied.result()
                log(f"backup {entry.stamp}: sha256 matches the manifest; restoring {manifest.dump_bytes / 1e6:,.1f} MB")
                _restore_and_verify(db, target, archive, manifest, globals_sql, report, log, after_restore)


@contextlib.contextmanager
def in_background(work: Callable[[threading.Event], None]) -> Iterator[concurrent.futures.Future]:
    """Run `work(stop)` in a thread while the block runs; leaving the block early (an error, a
    cancelled run) sets `stop` and waits for the work to end, so nothing outlives the block."""
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="restore-read") as pool:
        future = pool.submit(work, stop)
        try:
            yield future
        finally:
            stop.set()
            concurrent.futures.wait([future])


def _restore_and_verify(
    db: DatabaseConfig,
    target: RestoreTarget,
    archive: Path,
    manifest: BackupManifest,
    globals_sql: str | None,
    report: RestoreReport,
    log: Log,
    after_restore: Callable[[str], None] | None,
) -> None:
    report.sandbox = target.description
    started = time.monotonic()
    if globals_sql is not None:
        # The dump's roles first, then the restore WITH owners and privileges: a grant or an owner
        # naming a role the backup does not hold fails here, as it would in a real recovery.
        roles = apply_missing_roles(target.dsn, globals_sql)
        report.restore_errors += [f"roles: {e}" for e in roles.errors]
        report.owners_checked = True
        log(f"roles from the backup's globals: {len(roles.created)} created in the sandbox")
    report.restore_errors += pg_restore_into(archive, target, db.restore_test.jobs, owners=globals_sql is not None)
    report.restore_seconds = time.monotonic() - started
    log(f"restored into {target.description} in {report.restore_seconds:.1f} s")
    if after_restore:
        after_restore(target.dsn)
    started = time.monotonic()
    verify_counts(target.dsn, manifest, db.restore_test.sanity_queries, report)
    report.verify_seconds = time.monotonic() - started


def recent_restore(
    newest_verified: str | None, max_age: dt.timedelta, now: dt.datetime, withdrawn: list | None = None
) -> Verdict:
    """Has a restore test passed lately? `newest_verified`: the newest backup standing proven
    (core/backups/proof.py); `withdrawn`: the judgements of newer backups whose proof was withdrawn."""
    note = ""
    if withdrawn:
        first = withdrawn[0]
        note = f"; backup {first.entry.stamp} is not proven: {first.why_not}"
    if newest_verified is None:
        return Verdict.fail(
            ("no backup of this database stands proven restorable" + note)
            if withdrawn
            else "no backup of this database has ever passed a restore test",
        )
    age = now - stamp_time(newest_verified)
    metadata = {"newest_verified_backup": newest_verified, "age_days": round(age.total_seconds() / 86400, 2)}
    if withdrawn:
        metadata["withdrawn"] = ", ".join(j.entry.stamp for j in withdrawn)
    if age > max_age:
        return Verdict.fail(
            f"the newest backup proven restorable ({newest_verified}) is {age.days} days old "
            f"(limit {max_age.days} days){note}",
            metadata,
        )
    return Verdict.ok(
        f"backup {newest_verified} was proven restorable; it is {age.total_seconds() / 86400:.1f} days old{note}",
        metadata,
    )


def verified_copy(
    storage: BackupStorage, manifest: BackupManifest, archive: Path, stop: threading.Event | None = None
) -> None:
    """One read of the dump: sha256 of what is stored, and the decompressed archive on disk.
    `stop`: set by another thread to end the read early (RestoreRefused)."""
    dump = StoredDump(storage, manifest.dump_key)
    try:
        with archive.open("wb") as out:
            for piece in dump.decompressed():
                out.write(piece)
                if stop is not None and stop.is_set():
                    raise RestoreRefused(f"{manifest.dump_key}: reading stopped before the end")
    except DumpDamaged as exc:
        raise RestoreRefused(f"{exc}: damaged, not restored") from None
    problem = dump.mismatch(manifest)
    if problem:
        raise RestoreRefused(f"{problem}: not restored")
    if not dump.frame_complete:
        raise RestoreRefused(f"{manifest.dump_key} ends before its zstd frame does: truncated, not restored")


def read_globals(storage: BackupStorage, manifest: BackupManifest) -> str | None:
    """The backup's roles file, checked against the manifest's sha256; None for a backup without one."""
    if not manifest.globals_key:
        return None
    try:
        data = storage.read_bytes(manifest.globals_key)
    except StorageError as exc:
        raise RestoreRefused(f"{manifest.globals_key}: {exc}: not restored") from None
    if hashlib.sha256(data).hexdigest() != manifest.globals_sha256:
        raise RestoreRefused(f"{manifest.globals_key} does not match the manifest's sha256: not restored")
    return data.decode()


def pg_restore_into(archive: Path, target: RestoreTarget, jobs: int, owners: bool = False) -> list[str]:
    """pg_restore into an empty database; returns the errors it reported (none means a clean restore).
    `owners`: keep the dump's owners and privileges (a real recovery), else leave them out (a sandbox)."""
    purpose = "ops_pipelines/recover" if owners else "ops_pipelines/restore_test"
    connection = commands.tool_connection(target.dsn, purpose)
    return pg_restore.restore(pg_restore.find(target.pg_bin_dir), connection, archive, jobs=jobs, owners=owners)


def verify_counts(dsn: str, manifest: BackupManifest, sanity_queries: list[str], report: RestoreReport) -> None:
    """Count every table of the manifest, each in its own transaction (autocommit): one transaction
    over thousands of tables would hold a lock on each and run a small sandbox out of lock slots.
    A table that is not there is "missing"; one that could not be counted says so, with the cause."""
    with connect(dsn, statement_timeout="1h", purpose="restore_test", autocommit=True) as conn:
        for name, expected in sorted(manifest.table_counts.items()):
            schema, table = parse_qualified_name(name)
            query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(schema, table))
            try:
                restored = one(conn.execute(query))["n"]
            except psycopg.errors.UndefinedTable as exc:
                report.mismatches.append(Mismatch(name, expected, None, f"missing after restore: {first_line(exc)}"))
                continue
            except psycopg.Error as exc:
                report.mismatches.append(Mismatch(name, expected, None, f"could not count: {first_line(exc)}"))
                continue
            report.tables_checked += 1
            report.rows_checked += restored
            if restored != expected:
                report.mismatches.append(
                    Mismatch(name, expected, restored, f"{restored} rows restored, {expected} in the manifest")
                )
        for query_text in sanity_queries:
            try:
                row = conn.execute(config_sql(query_text)).fetchone()
            except psycopg.Error as exc:
                report.mismatches.append(Mismatch(query_text, None, None, f"sanity query failed: {first_line(exc)}"))
                continue
            if row is None:
                report.mismatches.append(Mismatch(query_text, None, None, "sanity query returned no row"))
            else:
                report.sanity_queries_passed += 1
