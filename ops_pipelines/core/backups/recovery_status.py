"""Where a database stands for recovery, read from its backup store: the newest complete backup,
the sizes of the recent ones, and the newest backup standing proven (core/backups/proof.py), with its
restore time and the newer backups whose proof was withdrawn.

One listing and a few small reads (markers and manifests of the newest tested backups): cheap
enough for a sensor. database_status, the report and the Prometheus textfile all read it, so they
never disagree.
"""

import datetime as dt
from dataclasses import dataclass, field

from ops_pipelines.adapters.storage import BackupStorage
from ops_pipelines.core.backups.catalog import list_backups, stamp_time
from ops_pipelines.core.backups.proof import Proof, newest_proof


@dataclass(frozen=True)
class RecoveryStatus:
    database: str
    newest_backup: str | None  # stamp
    newest_backup_bytes: int | None
    recent_sizes: list[tuple[dt.datetime, int]]  # complete backups within the trend window, oldest first
    incomplete: int  # dumps without a manifest (in progress, or left by a crash)
    verified: Proof | None  # the newest backup standing proven
    problem: str | None = None  # the newest tested backup's proof was withdrawn: why
    withdrawn: list[str] = field(default_factory=list)  # stamps newer than `verified` whose proof was withdrawn

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
    proof, withdrawn = newest_proof(storage, entries)
    return RecoveryStatus(
        database=database,
        newest_backup=newest.stamp if newest else None,
        newest_backup_bytes=newest.dump.bytes if newest and newest.dump else None,
        recent_sizes=recent,
        incomplete=sum(1 for e in entries if e.dump is not None and e.manifest is None),
        verified=proof,
        problem=f"backup {withdrawn[0].entry.stamp} is not proven: {withdrawn[0].why_not}" if withdrawn else None,
        withdrawn=[j.entry.stamp for j in withdrawn],
    )
