"""A verified logical backup: pg_dump (custom format) streamed through zstd and sha256 to disk.

0. Exclude every other backup of this database: an exclusive lock in the store (other processes on
   this host, whatever launched them: schedule, sensor, CLI) and a session-level advisory lock on
   the source database (other machines and run launchers). A second backup is refused at once.
1. Open a REPEATABLE READ, READ ONLY transaction and export its snapshot.
2. Start `pg_dump --snapshot=<it> -Fc -Z0` and, at the same time, count the rows of every table
   in that same snapshot (a worker thread), so the counts describe exactly what the dump holds.
3. Compress pg_dump's output with zstd and hash the compressed bytes while they are written to a
   hidden temporary file; fsync, rename, fsync the directory.
4. Write the manifest (atomically) last: a backup without a manifest is not complete.

Any failure kills pg_dump's process group and leaves no partial file and no manifest behind.
"""

import concurrent.futures
import datetime as dt
import hashlib
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import zstandard
from psycopg import IsolationLevel, sql

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.commands import Streaming
from ops_pipelines.adapters.postgres import (
    Connection,
    advisory_lock_holder,
    connect_db,
    describe_dsn,
    first_line,
    one,
    read_sql,
)
from ops_pipelines.adapters.programs import pg_dump as pg_dump_program
from ops_pipelines.adapters.programs import pg_dumpall
from ops_pipelines.adapters.programs.pg_dump import PgDump
from ops_pipelines.adapters.storage import LocalStorage
from ops_pipelines.adapters.storage.local import StoreLocked
from ops_pipelines.config import DatabaseConfig
from ops_pipelines.core.backups.catalog import dump_key, globals_key, manifest_key, stamp_for
from ops_pipelines.core.backups.manifest import BackupManifest
from ops_pipelines.errors import CommandFailed, OpsError

READ_BYTES = 1024 * 1024
# The session-level advisory lock a backup holds on its source database ("ops_bak" in ASCII).
BACKUP_LOCK_ID = 0x6F70735F62616B
Log = Callable[[str], None]


class BackupFailed(OpsError):
    """The backup did not complete; nothing of it was kept."""


class BackupInProgress(BackupFailed):
    """Another backup of the same database is running; this one was refused before it began."""


@dataclass(frozen=True)
class BackupResult:
    manifest: BackupManifest
    uri: str
    partials_removed: list[str]


def run_backup(
    db: DatabaseConfig,
    storage: LocalStorage,
    *,
    log: Log = lambda message: None,
    progress_seconds: float = 5.0,
    bin_dir: Path | None = None,
) -> BackupResult:
    """Back up `db` into `storage`; returns the manifest of the complete backup."""
    try:
        with storage.exclusive(db.name, "backup"):
            return _locked_backup(db, storage, log, progress_seconds, bin_dir)
    except StoreLocked as exc:
        raise BackupInProgress(f"refused: {exc}") from None


def _locked_backup(
    db: DatabaseConfig, storage: LocalStorage, log: Log, progress_seconds: float, bin_dir: Path | None
) -> BackupResult:
    partials = storage.remove_partials(db.name)
    if partials:
        log(f"removed {len(partials)} partial file(s) left by an interrupted backup: {', '.join(partials)}")
    stamp, started_at = _unused_stamp(storage, db.name)
    dsn = db.dsn.get_secret_value()
    source = describe_dsn(dsn)

    with connect_db(db, "backup") as conn:
        _take_source_lock(conn, db.name)
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        # This session sits idle in its transaction while pg_dump streams: it must not be cut.
        conn.execute("SELECT set_config('idle_in_transaction_session_timeout', '0', false)")
        info = one(
            conn.execute(
                "SELECT pg_export_snapshot() AS snapshot, current_setting('server_version') AS version,"
                " current_setting('server_version_num')::int AS version_num"
            )
        )
        tables = _tables_to_count(conn, db)
        pg_dump = pg_dump_for(info["version_num"], bin_dir)
        pg_dump_version = pg_dump.version.line
        log(f"dumping {source} with {pg_dump_version} (snapshot {info['snapshot']}); counting {len(tables)} tables")

        key = dump_key(db.name, stamp)
        target = commands.tool_connection(dsn, "ops_pipelines/backup")
        counter = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="row-count")
        counts_future = counter.submit(_count_rows, conn, tables)
        try:
            with storage.open_write(key) as out:
                stream = _stream_dump(
                    pg_dump_program.dump_custom(
                        pg_dump,
                        target,
                        snapshot=info["snapshot"],
                        lock_wait_timeout_ms=int(db.timeouts.lock.to_timedelta().total_seconds() * 1000),
                    ),
                    out,
                    db.backup.compression_level,
                    db.backup.compression_threads,
                    progress=lambda done, written: log(f"{done / 1e6:,.1f} MB dumped, {written / 1e6:,.1f} MB written"),
                    progress_seconds=progress_seconds,
                    abort_if=lambda: counts_future.done() and counts_future.exception() is not None,
                )
                counts = counts_future.result()
        except BaseException as exc:
            counting_failed = counts_future.done() and counts_future.exception() is not None
            conn.cancel_safe()  # stop a count still running
            counter.shutdown(wait=True, cancel_futures=True)
            failure = counts_future.exception() if counting_failed else None
            if failure is not None:
                raise BackupFailed(f"counting rows failed: {first_line(failure)}") from None
            if isinstance(exc, OpsError):
                raise BackupFailed(str(exc)) from None
            raise
        counter.shutdown()
        conn.rollback()  # read-only: nothing to commit; ends the snapshot
        globals_sql = _dump_globals(pg_dump.bin_dir, target, log)
        globals_name = globals_key(db.name, stamp) if globals_sql is not None else None
        if globals_name is not None and globals_sql is not None:
            try:
                storage.write_bytes(globals_name, globals_sql)
            except BaseException:
                storage.delete(key)
                raise

        manifest = BackupManifest(
            database=db.name,
            dump_key=key,
            sha256=stream.sha256,
            bytes=stream.written_bytes,
            dump_bytes=stream.dump_bytes,
            format="custom",
            compression="zstd",
            compression_level=db.backup.compression_level,
            pg_dump_version=pg_dump_version,
            server_version=info["version"],
            server_version_num=info["version_num"],
            started_at=started_at,
            finished_at=dt.datetime.now(dt.UTC),
            snapshot=info["snapshot"],
            source=source,
            table_counts=counts,
            counted="listed" if db.backup.count_tables else "all",
            globals_key=globals_name,
            globals_sha256=hashlib.sha256(globals_sql).hexdigest() if globals_sql is not None else None,
        )
        try:
            storage.write_bytes(manifest_key(db.name, stamp), manifest.to_json().encode())
        except BaseException:
            storage.delete(key)  # a dump without its manifest is no backup
            if globals_name:
                storage.delete(globals_name)
            raise
    return BackupResult(manifest, storage.uri(key), partials)


def _unused_stamp(storage: LocalStorage, database: str) -> tuple[str, dt.datetime]:
    """The backup's stamp (its start, whole seconds, UTC) and start time. A backup starting in the
    same second as an earlier one waits for the next second rather than overwrite its files; the
    store's lock is held, so no other backup can take the stamp meanwhile."""
    while True:
        started_at = dt.datetime.now(dt.UTC)
        stamp = stamp_for(started_at)
        if not storage.list_names(f"{database}/{stamp}"):
            return stamp, started_at
        time.sleep(1.001 - started_at.microsecond / 1e6)


def _dump_globals(bin_dir: Path, target, log: Log) -> bytes | None:
    """The server's roles (without passwords), memberships and tablespaces, as SQL; None, with a warning
    in the log, when this role may not read them: the backup itself does not depend on it."""
    try:
        dumped = pg_dumpall.globals_only(bin_dir, target)
    except (CommandFailed, OpsError) as exc:
        log(f"WARNING: roles and grants not saved (pg_dumpall --globals-only failed: {exc}); the backup is complete")
        return None
    return dumped.encode()


def _take_source_lock(conn: Connection, database: str) -> None:
    """The session-level advisory lock on the source database, held until the connection closes;
    refused at once (never queued) when another session holds it."""
    if one(conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (BACKUP_LOCK_ID,)))["got"]:
        conn.commit()  # a session-level lock outlives the transaction
        return
    who = advisory_lock_holder(conn, BACKUP_LOCK_ID, this_database_only=True) or "a session that just ended"
    conn.rollback()
    raise BackupInProgress(
        f"refused: another backup of {database} is running: {who} holds the backup lock on the source database"
    )


def pg_dump_for(server_version_num: int, bin_dir: Path | None = None) -> PgDump:
    """A pg_dump at least as new as the server (an older one refuses to dump it)."""
    try:
        return pg_dump_program.for_server(server_version_num // 10000, bin_dir)
    except CommandFailed as exc:
        raise BackupFailed(str(exc)) from None


def _tables_to_count(conn: Connection, db: DatabaseConfig) -> list[tuple[str, str, str]]:
    rows = conn.execute(read_sql("backup_tables.sql")).fetchall()
    tables = [(r["qualified_name"], r["schema_name"], r["table_name"]) for r in rows]
    if not db.backup.count_tables:
        return tables
    by_name = {(schema, table): qualified for qualified, schema, table in tables}
    missing = [f"{s}.{t}" for s, t in db.backup.count_tables if (s, t) not in by_name]
    if missing:
        raise BackupFailed(f"backup.count_tables names tables that do not exist in {db.name}: {', '.join(missing)}")
    return [(by_name[(s, t)], s, t) for s, t in db.backup.count_tables]


def _count_rows(conn: Connection, tables: list[tuple[str, str, str]]) -> dict[str, int]:
    counts = {}
    for qualified, schema, table in tables:
        query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(schema, table))
        counts[qualified] = one(conn.execute(query))["n"]
    return counts


@dataclass(frozen=True)
class _StreamResult:
    dump_bytes: int
    written_bytes: int
    sha256: str


class _HashingWriter:
    """Hashes and counts what zstd writes, on its way to the file."""

    def __init__(self, out) -> None:
        self.out = out
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        self.out.write(data)
        return len(data)


def _stream_dump(
    dump: AbstractContextManager[Streaming],
    out,
    level: int,
    threads: int,
    *,
    progress: Callable[[int, int], None],
    progress_seconds: float,
    abort_if: Callable[[], bool],
) -> _StreamResult:
    sink = _HashingWriter(out)
    dumped = 0
    with dump as pg_dump:
        # write_checksum: the frame carries a hash of the content, so decompression detects damage.
        # threads > 0: zstd's own worker threads compress (still one frame), the GIL-free part of the pipe.
        compressor = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True).stream_writer(
            cast(IO[bytes], sink),  # zstandard calls only write() on it
            closefd=False,
        )
        next_report = time.monotonic() + progress_seconds
        while chunk := os.read(pg_dump.stdout_fd, READ_BYTES):
            compressor.write(chunk)
            dumped += len(chunk)
            if time.monotonic() >= next_report:
                progress(dumped, sink.bytes)
                next_report = time.monotonic() + progress_seconds
                if abort_if():
                    raise BackupFailed("row counting failed while dumping")
        compressor.flush(zstandard.FLUSH_FRAME)
        returncode = pg_dump.wait()
        if returncode != 0:
            raise BackupFailed(pg_dump.failure(returncode))
    if dumped == 0:
        raise BackupFailed("pg_dump wrote nothing")
    return _StreamResult(dumped, sink.bytes, sink.sha256.hexdigest())
