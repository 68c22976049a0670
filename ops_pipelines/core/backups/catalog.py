"""Names of backup files and what a store holds for one database.

    <db>/20261122T020000Z.dump.zst        the dump (pg_dump custom format, zstd-compressed)
    <db>/20261122T020000Z.manifest.json   its manifest: a backup is complete once this exists
    <db>/20261122T020000Z.restore-ok.json     written when a restore test proved the backup
    <db>/20261122T020000Z.restore-failed.json written when one failed (and the ok marker removed)

The timestamp is the backup's start, in UTC, so names sort in time order. A stamp later than now
(beyond CLOCK_SKEW) is refused: it cannot be a backup this instance took, and ranked by name it
would pass for the newest (a planted object in S3, or a clock that jumped).
"""

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from ops_pipelines.adapters.storage import BackupStorage, StoredObject
from ops_pipelines.core.backups.manifest import BackupManifest, ManifestError

DUMP_SUFFIX = ".dump.zst"
MANIFEST_SUFFIX = ".manifest.json"
VERIFIED_SUFFIX = ".restore-ok.json"
FAILED_SUFFIX = ".restore-failed.json"
GLOBALS_SUFFIX = ".globals.sql"  # pg_dumpall --globals-only --no-role-passwords: the roles the dump's grants name
_STAMP = re.compile(r"^(\d{8}T\d{6}Z)\.")
CLOCK_SKEW = dt.timedelta(minutes=5)  # how far ahead of this host's clock a stamp may be


def stamp_for(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def stamp_of(key: str) -> str:
    """`erp/20261122T020000Z.dump.zst` -> `20261122T020000Z`."""
    match = _STAMP.match(key.rsplit("/", 1)[-1])
    if not match:
        raise ValueError(f"{key!r} is not the name of a backup file")
    return match.group(1)


def stamp_time(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


def dump_key(database: str, stamp: str) -> str:
    return f"{database}/{stamp}{DUMP_SUFFIX}"


def manifest_key(database: str, stamp: str) -> str:
    return f"{database}/{stamp}{MANIFEST_SUFFIX}"


def globals_key(database: str, stamp: str) -> str:
    return f"{database}/{stamp}{GLOBALS_SUFFIX}"


def verified_key(database: str, stamp: str) -> str:
    return f"{database}/{stamp}{VERIFIED_SUFFIX}"


def failed_key(database: str, stamp: str) -> str:
    return f"{database}/{stamp}{FAILED_SUFFIX}"


def future_problem(stamp: str, now: dt.datetime | None = None) -> str | None:
    """Why `stamp` cannot be a real backup's: later than now beyond the clock-skew allowance."""
    now = now or dt.datetime.now(dt.UTC)
    if stamp_time(stamp) > now + CLOCK_SKEW:
        return f"stamp {stamp} is in the future (this host's clock: {stamp_for(now)}): refused"
    return None


# How a backup was taken. Retention planning (retention.py), the judgement of what stands proven
# (proof.py) and the recovery status (recovery_status.py) read only an entry's listed objects,
# manifest and markers, never pg_dump's own details: a method that lists its backups as entries
# reuses them. Taking, checking and restoring one are what each method brings.
BackupMethod = Literal["pg_dump"]


@dataclass(frozen=True)
class BackupEntry:
    """One backup as listed: its files, whichever exist."""

    database: str
    stamp: str
    dump: StoredObject | None
    manifest: StoredObject | None
    verified: bool  # a restore-ok marker exists (a claim: core/backups/proof.py judges it)
    globals: StoredObject | None = None
    failed: bool = False  # a restore-failed marker exists
    refused: str | None = None  # why the entry is not believed (a stamp in the future)
    method: BackupMethod = "pg_dump"  # every entry this store lists is a pg_dump today

    @property
    def started_at(self) -> dt.datetime:
        return stamp_time(self.stamp)

    @property
    def complete(self) -> bool:
        return self.dump is not None and self.manifest is not None and self.refused is None

    @property
    def keys(self) -> list[str]:
        keys = [
            self.dump.key if self.dump else None,
            self.manifest.key if self.manifest else None,
            self.globals.key if self.globals else None,
        ]
        if self.verified:
            keys.append(verified_key(self.database, self.stamp))
        if self.failed:
            keys.append(failed_key(self.database, self.stamp))
        return [k for k in keys if k]


def list_backups(storage: BackupStorage, database: str, now: dt.datetime | None = None) -> list[BackupEntry]:
    """Every backup of `database`, oldest first, from one listing (no file is opened). An entry
    stamped in the future is listed with `refused` set: never complete, never the newest."""
    now = now or dt.datetime.now(dt.UTC)
    by_stamp: dict[str, dict[str, StoredObject]] = {}
    for obj in storage.list_objects(f"{database}/"):
        name = obj.key.rsplit("/", 1)[-1]
        match = _STAMP.match(name)
        if not match:
            continue
        suffix = name[len(match.group(1)) :]
        by_stamp.setdefault(match.group(1), {})[suffix] = obj
    return [
        BackupEntry(
            database=database,
            stamp=stamp,
            dump=files.get(DUMP_SUFFIX),
            manifest=files.get(MANIFEST_SUFFIX),
            verified=VERIFIED_SUFFIX in files,
            globals=files.get(GLOBALS_SUFFIX),
            failed=FAILED_SUFFIX in files,
            refused=future_problem(stamp, now),
        )
        for stamp, files in sorted(by_stamp.items())
        if DUMP_SUFFIX in files or MANIFEST_SUFFIX in files
    ]


def newest_complete_stamp(storage: BackupStorage, database: str) -> str | None:
    """The newest stamp with both a dump and a manifest, from names alone (sensors call this)."""
    dumps, manifests = set(), set()
    for key in storage.list_names(f"{database}/"):
        name = key.rsplit("/", 1)[-1]
        if name.endswith(DUMP_SUFFIX):
            dumps.add(name[: -len(DUMP_SUFFIX)])
        elif name.endswith(MANIFEST_SUFFIX):
            manifests.add(name[: -len(MANIFEST_SUFFIX)])
    now = dt.datetime.now(dt.UTC)
    complete = [s for s in dumps & manifests if _STAMP.match(f"{s}.") and future_problem(s, now) is None]
    return max(complete) if complete else None


def complete_backups(storage: BackupStorage, database: str) -> list[BackupEntry]:
    return [entry for entry in list_backups(storage, database) if entry.complete]


def read_manifest(storage: BackupStorage, entry: BackupEntry) -> BackupManifest:
    """The entry's manifest, refused unless it names this very backup (database, stamp, dump) and,
    from an untrusted store with a key set, carries a valid signature."""
    if entry.refused:
        raise ManifestError(f"backup {entry.stamp} of {entry.database}: {entry.refused}")
    if entry.manifest is None:
        raise ManifestError(f"backup {entry.stamp} of {entry.database} has no manifest")
    where = storage.uri(entry.manifest.key)
    manifest = BackupManifest.from_json(
        storage.read_bytes(entry.manifest.key), where=where, untrusted=not storage.trusted
    )
    problem = manifest.binding_problem(entry.database, entry.stamp)
    if problem:
        raise ManifestError(f"{where} {problem}: refused")
    return manifest
