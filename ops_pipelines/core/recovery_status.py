"""Where a database stands for recovery, read from its backup store: the newest complete backup,
the sizes of the recent ones, and the newest backup a restore test proved (with its restore time).

One listing and at most one small read (the newest restore-ok marker): cheap enough for a sensor.
The report and the Prometheus textfile both read it, so they never disagree.
"""

import datetime as dt
import json
from dataclasses import dataclass

from ops_pipelines.core.backup_catalog import list_backups, stamp_time, verified_key
from ops_pipelines.resources.storage import BackupStorage, StorageError


@dataclass(frozen=True)
class VerifiedRestore:
    backup: str  # stamp of the backup the test restored
    finished_at: dt.datetime | None
    restore_seconds: float | None
    sandbox: str | None


@dataclass(frozen=True)
class RecoveryStatus:
    database: str
    newest_backup: str | None  # stamp
    newest_backup_bytes: int | None
    recent_sizes: list[tuple[dt.datetime, int]]  # complete backups within the trend window, oldest first
    incomplete: int  # dumps without a manifest (in progress, or left by a crash)
    verified: VerifiedRestore | None
    problem: str | None = None  # the marker could not be read, etc.

    @property
    def newest_backup_at(self) -> dt.datetime | None:
        return stamp_time(self.newest_backup) if self.newest_backup else None

    def backup_age(self, now: dt.datetime) -> dt.timedelta | None:
        newest = self.newest_backup_at
        return now - newest if newest is not None else None

    @property
    def trend_ratio(self) -> float | None:
        """Newest size over the oldest in the window: 1.25 means 25% larger."""
        if len(self.recent_sizes) < 2 or self.recent_sizes[0][1] <= 0:
            return None
        return self.recent_sizes[-1][1] / self.recent_sizes[0][1]


def recovery_status(storage: BackupStorage, database: str, now: dt.datetime, trend_days: int = 30) -> RecoveryStatus:
    entries = list_backups(storage, database)
    complete = [e for e in entries if e.complete]
    since = now - dt.timedelta(days=trend_days)
    recent = [(e.started_at, e.dump.bytes) for e in complete if e.started_at >= since and e.dump is not None]
    newest = complete[-1] if complete else None
    verified_entries = [e for e in entries if e.verified]
    verified, problem = None, None
    if verified_entries:
        stamp = verified_entries[-1].stamp
        try:
            verified = _read_marker(storage, database, stamp)
        except (StorageError, ValueError) as exc:
            problem = f"restore-ok marker of {stamp} unreadable: {exc}"
            verified = VerifiedRestore(stamp, None, None, None)
    return RecoveryStatus(
        database=database,
        newest_backup=newest.stamp if newest else None,
        newest_backup_bytes=newest.dump.bytes if newest and newest.dump else None,
        recent_sizes=recent,
        incomplete=sum(1 for e in entries if not e.complete),
        verified=verified,
        problem=problem,
    )


def _read_marker(storage: BackupStorage, database: str, stamp: str) -> VerifiedRestore:
    data = json.loads(storage.read_bytes(verified_key(database, stamp)))
    finished = data.get("finished_at")
    seconds = data.get("restore_seconds")
    return VerifiedRestore(
        backup=stamp,
        finished_at=dt.datetime.fromisoformat(finished) if finished else None,
        restore_seconds=float(seconds) if seconds is not None else None,
        sandbox=data.get("sandbox"),
    )
