"""Names of backup files and what a store holds for one database.

    <db>/20261122T020000Z.dump.zst        the dump (pg_dump custom format, zstd-compressed)
    <db>/20261122T020000Z.manifest.json   its manifest: a backup is complete once this exists
    <db>/20261122T020000Z.restore-ok.json written when a restore test proved the backup

The timestamp is the backup's start, in UTC, so names sort in time order.
"""

import datetime as dt
import re
from dataclasses import dataclass

from ops_pipelines.core.manifest import BackupManifest, ManifestError
from ops_pipelines.resources.storage import BackupStorage, StoredObject

DUMP_SUFFIX = ".dump.zst"
MANIFEST_SUFFIX = ".manifest.json"
VERIFIED_SUFFIX = ".restore-ok.json"
GLOBALS_SUFFIX = ".globals.sql"  # pg_dumpall --globals-only --no-role-passwords: the roles the dump's grants name
_STAMP = re.compile(r"^(\d{8}T\d{6}Z)\.")


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


@dataclass(frozen=True)
class BackupEntry:
    """One backup as listed: its files, whichever exist."""

    database: str
    stamp: str
    dump: StoredObject | None
    manifest: StoredObject | None
    verified: bool
    globals: StoredObject | None = None

    @property
    def started_at(self) -> dt.datetime:
        return stamp_time(self.stamp)

    @property
    def complete(self) -> bool:
        return self.dump is not None and self.manifest is not None

    @property
    def keys(self) -> list[str]:
        keys = [
            self.dump.key if self.dump else None,
            self.manifest.key if self.manifest else None,
            self.globals.key if self.globals else None,
        ]
        if self.verified:
            keys.append(verified_key(self.database, self.stamp))
        return [k for k in keys if k]


def list_backups(storage: BackupStorage, database: str) -> list[BackupEntry]:
    """Every backup of `database`, oldest first, from one listing (no file is opened)."""
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
    complete = [stamp for stamp in dumps & manifests if _STAMP.match(f"{stamp}.")]
    return max(complete) if complete else None


def newest_verified_stamp(storage: BackupStorage, database: str) -> str | None:
    """The newest backup a restore test proved, from names alone."""
    stamps = [
        name[: -len(VERIFIED_SUFFIX)]
        for name in (key.rsplit("/", 1)[-1] for key in storage.list_names(f"{database}/"))
        if name.endswith(VERIFIED_SUFFIX)
    ]
    return max(stamps) if stamps else None


def complete_backups(storage: BackupStorage, database: str) -> list[BackupEntry]:
    return [entry for entry in list_backups(storage, database) if entry.complete]


def read_manifest(storage: BackupStorage, entry: BackupEntry) -> BackupManifest:
    if entry.manifest is None:
        raise ManifestError(f"backup {entry.stamp} of {entry.database} has no manifest")
    return BackupManifest.from_json(storage.read_bytes(entry.manifest.key), where=storage.uri(entry.manifest.key))
