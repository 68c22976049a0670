"""Per-database settings, one model per capability (timeouts, backup, restore test, vacuum, reindex,
maintenance window, capacity, health, integrity); `DatabaseSettings` gathers them, and the
top-level `defaults:` takes the same shape.
"""

from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from ops_pipelines.config.fields import AbsolutePath, Dsn, FixedDuration, QualifiedName, Ratio, Section, Size
from ops_pipelines.config.instance import Retention
from ops_pipelines.units import parse_duration, parse_size


class Timeouts(Section):
    connect: FixedDuration = parse_duration("10s")
    lock: FixedDuration = parse_duration("5s")  # maintenance waits this long for a lock, then skips
    statement: FixedDuration = parse_duration("1h")


class BackupSettings(Section):
    max_age_hours: float = Field(default=26, gt=0)
    count_tables: list[QualifiedName] = []  # empty: count every table at dump time
    # zstd level and worker threads; the defaults are chosen from bench/bench_backup.py's table on ERP-like
    # data (bench/RESULTS.md). threads 0: compress in the backup's own thread.
    compression_level: int = Field(default=1, ge=1, le=19)
    compression_threads: int = Field(default=0, ge=0, le=64)
    retention: Retention | None = None  # default: the top-level retention


class RestoreTestSettings(Section):
    sandbox: Literal["local_cluster", "scratch_database", "docker"] = "local_cluster"
    bin_dir: AbsolutePath | None = None  # PostgreSQL binaries for local_cluster; default: newest found
    scratch_dsn: Dsn | None = None  # the server scratch_database restores into
    docker_image: str | None = None  # default: postgres:<major of the dump>
    jobs: int = Field(default=2, ge=1, le=64)
    sanity_queries: list[str] = []  # each must return at least one row after the restore
    max_age: FixedDuration = parse_duration("8 days")
    offsite_max_age: FixedDuration = parse_duration("35 days")  # the S3 drill (offsite_restore_test) runs monthly
    # ... and also after every this many off-site copies of the database (0: monthly only)
    offsite_every_backups: int = Field(default=10, ge=0)

    @model_validator(mode="after")
    def _scratch_needs_server(self) -> "RestoreTestSettings":
        if self.sandbox == "scratch_database" and self.scratch_dsn is None:
            raise ValueError("sandbox scratch_database needs scratch_dsn (the server to restore into)")
        return self


class VacuumSettings(Section):
    dead_ratio: Ratio = 0.2
    min_dead_tuples: int = Field(default=1000, ge=0)
    stale_analyze_ratio: Ratio = 0.1
    xid_age_warn: int = Field(default=500_000_000, gt=0)
    xid_age_error: int = Field(default=1_200_000_000, gt=0)

    @model_validator(mode="after")
    def _warn_before_error(self) -> "VacuumSettings":
        if self.xid_age_warn >= self.xid_age_error:
            raise ValueError(
                f"xid_age_warn ({self.xid_age_warn:,}) must be below xid_age_error ({self.xid_age_error:,})"
            )
        return self


class ReindexSettings(Section):
    bloat_ratio: Ratio = 0.3
    min_index_size: Size = parse_size("10MB")


class MaintenanceWindowSettings(Section):
    vacuum_full_tables: list[QualifiedName] = []
    full_reindex: bool = False


class CapacitySettings(Section):
    volume_path: AbsolutePath | None = None  # statvfs of this path when the database is on this host
    volume_capacity: Size | None = None  # else this figure against the server's database sizes
    warn_ratio: Ratio = 0.7
    warn_within: FixedDuration = parse_duration("90 days")
    error_within: FixedDuration = parse_duration("30 days")
    connection_warn_ratio: Ratio = 0.8

    @model_validator(mode="after")
    def _warn_sooner_than_error(self) -> "CapacitySettings":
        if self.warn_within.seconds < self.error_within.seconds:
            raise ValueError(
                f"warn_within ({self.warn_within}) must be at least error_within ({self.error_within}): "
                "the warning comes first"
            )
        return self


class HealthSettings(Section):
    """The live probe (`health` and its checks, every `schedules.health`): warn, then error, thresholds.
    Transaction-ID wraparound uses `vacuum.xid_age_warn` / `xid_age_error`."""

    connections_warn_ratio: Ratio = 0.8  # of max_connections less the reserved slots
    connections_error_ratio: Ratio = 0.95
    max_connections_used: int | None = Field(default=None, ge=1)  # an absolute limit too (the runbooks' 150)
    long_query_warn: FixedDuration = parse_duration("5 min")  # one statement running this long
    long_query_error: FixedDuration = parse_duration("30 min")
    idle_in_transaction_warn: FixedDuration = parse_duration("5 min")  # a session idle inside a transaction
    idle_in_transaction_error: FixedDuration = parse_duration("30 min")
    xmin_held_warn: FixedDuration = parse_duration("30 min")  # a transaction holding back vacuum's horizon
    xmin_held_error: FixedDuration = parse_duration("2 h")
    blocked_warn: FixedDuration = parse_duration("1 min")  # a session waiting on a lock
    blocked_error: FixedDuration = parse_duration("5 min")
    sequence_warn_ratio: Ratio = 0.75  # of the column's type maximum (or the sequence's, if lower)
    sequence_error_ratio: Ratio = 0.9
    prepared_xact_warn: FixedDuration = parse_duration("5 min")
    prepared_xact_error: FixedDuration = parse_duration("30 min")
    replica_lag_warn: FixedDuration = parse_duration("1 min")
    replica_lag_error: FixedDuration = parse_duration("10 min")
    slot_retained_warn: Size = parse_size("1 GB")  # WAL a replication slot keeps on the primary
    slot_retained_error: Size = parse_size("10 GB")
    cache_hit_min: Ratio = 0.95  # the runbooks' "more than 95 %", over the interval since the previous probe
    volume_warn_free_ratio: Ratio = 0.2  # backup_volume and data_volume
    volume_error_free_ratio: Ratio = 0.1
    volume_min_free: Size = parse_size("5 GB")  # an error below this, whatever the ratio
    # Runbook 002: terminate sessions idle in a transaction for longer than this (off unless set).
    terminate_idle_in_transaction_after: FixedDuration | None = None

    @model_validator(mode="after")
    def _warn_before_error(self) -> "HealthSettings":
        pairs = [
            ("connections_warn_ratio", self.connections_warn_ratio, self.connections_error_ratio),
            ("sequence_warn_ratio", self.sequence_warn_ratio, self.sequence_error_ratio),
            ("long_query_warn", self.long_query_warn.seconds, self.long_query_error.seconds),
            ("idle_in_transaction_warn", self.idle_in_transaction_warn.seconds, self.idle_in_transaction_error.seconds),
            ("xmin_held_warn", self.xmin_held_warn.seconds, self.xmin_held_error.seconds),
            ("blocked_warn", self.blocked_warn.seconds, self.blocked_error.seconds),
            ("prepared_xact_warn", self.prepared_xact_warn.seconds, self.prepared_xact_error.seconds),
            ("replica_lag_warn", self.replica_lag_warn.seconds, self.replica_lag_error.seconds),
            ("slot_retained_warn", self.slot_retained_warn, self.slot_retained_error),
        ]
        for name, warn, error in pairs:
            if warn > error:
                raise ValueError(f"{name} must not exceed its error threshold: the warning comes first")
        if self.volume_warn_free_ratio < self.volume_error_free_ratio:
            raise ValueError("volume_warn_free_ratio must be at least volume_error_free_ratio (less free is worse)")
        return self


class IntegritySettings(Section):
    """`integrity` (weekly): amcheck's bt_index_check of every btree index, and verify_heapam of every
    table (PostgreSQL 14+) when `heap` is set."""

    heap: bool = False
    index_timeout: FixedDuration = parse_duration("10 min")  # each index's (and table's) statement timeout


class DatabaseSettings(Section):
    """Everything per database that may also be set once under `defaults:`."""

    timeouts: Timeouts = Timeouts()
    backup: BackupSettings = BackupSettings()
    restore_test: RestoreTestSettings = RestoreTestSettings()
    vacuum: VacuumSettings = VacuumSettings()
    reindex: ReindexSettings = ReindexSettings()
    maintenance_window: MaintenanceWindowSettings = MaintenanceWindowSettings()
    capacity: CapacitySettings = CapacitySettings()
    health: HealthSettings = HealthSettings()
    integrity: IntegritySettings = IntegritySettings()
