"""The weekly maintenance report as data: one section per database, filled from the backup store,
Dagster's history of the week and the live database. render.py turns it into HTML and
Markdown; the asset (automation/report.py) gathers it.
"""

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from ops_pipelines.core.backups.catalog import stamp_time
from ops_pipelines.core.backups.recovery_status import RecoveryStatus
from ops_pipelines.core.report.live_reads import DatabaseHealth
from ops_pipelines.core.report.traffic import DayTraffic


@dataclass(frozen=True)
class MaintenanceAction:
    at: dt.datetime
    asset: str  # vacuum_analyze, reindex, archive_<rule>, maintenance_window
    figures: list[tuple[str, str]]  # (label, value as shown)
    run_id: str


@dataclass(frozen=True)
class FailedCheck:
    at: dt.datetime
    asset: str
    check: str
    severity: str  # error | warning
    description: str
    run_id: str


@dataclass(frozen=True)
class FailingCheckNow:
    """A check whose newest result, now, is a failure (error or warning), whenever it ran."""

    asset: str
    check: str
    severity: str  # error | warning
    description: str


@dataclass(frozen=True)
class FailedRun:
    at: dt.datetime
    what: str  # the capability (backup, vacuum ...) or the job
    cause: str
    run_id: str


@dataclass(frozen=True)
class RestoreTestRun:
    at: dt.datetime
    backup: str
    passed: bool
    restore_seconds: float | None
    run_id: str


@dataclass(frozen=True)
class OffsiteDrill:
    """The newest passing off-site drill: a backup read from S3, restored and verified."""

    at: dt.datetime
    backup: str
    restore_seconds: float | None
    run_id: str


@dataclass(frozen=True)
class HealthEpisode:
    """A stretch of time a health check failed: from its first failing result to the next pass."""

    check: str
    severity: str  # error | warning (the worst seen in the stretch)
    started: dt.datetime
    ended: dt.datetime | None  # None: still failing
    description: str  # the newest failing result's


@dataclass
class CapacityView:
    note: str | None = None  # why there is no forecast (capacity off, too little history)
    chart: Path | None = None  # capacity_<db>.png, drawn by capacity_forecast
    figures: list[tuple[str, str]] = field(default_factory=list)
    headroom: str | None = None  # the capacity_headroom check's verdict


@dataclass
class DatabaseReport:
    name: str
    description: str
    max_backup_age: dt.timedelta
    max_restore_age: dt.timedelta
    recovery: RecoveryStatus
    restore_tests: list[RestoreTestRun]  # this week's
    failed_checks: list[FailedCheck]  # this week's, newest first
    failing_now: list[FailingCheckNow]  # every check of the database whose newest result failed
    failed_runs: list[FailedRun]  # this week's, newest first
    maintenance: list[MaintenanceAction]  # this week's, oldest first
    capacity: CapacityView
    traffic: list[DayTraffic] | None  # the last 14 days; None: capacity samples are off
    health: DatabaseHealth | None
    unreachable: str | None = None  # why health is None
    max_offsite_age: dt.timedelta | None = None  # None: no off-site store, so no drill
    offsite_drill: OffsiteDrill | None = None  # the newest passing one
    health_episodes: list[HealthEpisode] | None = None  # this week's; None: no health probe

    def attention(self, now: dt.datetime) -> list[str]:
        """What a DBA must look at first, in plain words; empty when all is well. Every check failing
        now counts, warnings too: the summary never says "nothing" above a failed check."""
        found = []
        age = self.recovery.backup_age(now)
        if age is None:
            found.append("no complete backup")
        elif age > self.max_backup_age:
            found.append(f"newest backup is {age.total_seconds() / 3600:.0f} h old")
        verified = self.recovery.verified
        if self.recovery.withdrawn:
            found.append(f"proof withdrawn: backup {self.recovery.withdrawn[0]}")
        if verified is None:
            found.append("no backup ever proven restorable")
        elif now - stamp_time(verified.backup) > self.max_restore_age:
            found.append("no recent backup proven restorable")
        if self.max_offsite_age is not None:
            drill = self.offsite_drill
            if drill is None:
                found.append("no off-site backup ever proven restorable")
            elif now - stamp_time(drill.backup) > self.max_offsite_age:
                found.append("no recent off-site backup proven restorable")
        for severity in ("error", "warning"):
            failing = [f"{c.asset}:{c.check}" for c in self.failing_now if c.severity == severity]
            if failing:
                found.append(f"failing ({severity}): {', '.join(failing)}")
        if self.failed_runs:
            found.append(f"{len(self.failed_runs)} failed run" + ("s" if len(self.failed_runs) > 1 else ""))
        if self.unreachable:
            found.append("database unreachable")
        return found


@dataclass
class Report:
    generated_at: dt.datetime
    week_start: dt.datetime
    timezone: str
    databases: list[DatabaseReport]
    ui_base_url: str | None = None

    def run_url(self, run_id: str) -> str | None:
        return f"{self.ui_base_url.rstrip('/')}/runs/{run_id}" if self.ui_base_url else None
