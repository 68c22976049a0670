"""Every capability, declared once.

A capability is what one scheduled run does on one database: `backup` (dump, retention, off-site
copy), `vacuum`, `archive` ... Its entry says:

- its name (the run tag `ops_pipelines/capability`, the schedule's name);
- its parts: each a module's `build(config, capability, fleets)` and the assets that module makes
  for a database — none means the database is not a partition of them; no asset in any part means
  the capability does not exist for that database;
- `refreshes`: assets of another capability each of its runs materializes first (vacuum reads
  fresh table statistics);
- `schedule`: the key of `config.schedules` that runs it, FIRST_WEEK (the monthly window), or None;
- `maintenance`: whether the weekly report lists its runs under "maintenance this week".

Each asset is built once, partitioned by the databases that have it (`fleets`). Two runs of one
database never overlap, whatever the capability: the run queue admits one run per partition key.
Definitions, jobs, schedules, sensors and the report read this list. Adding a capability means one
module under assets/ and one entry here.
"""

from ops_pipelines.assets import (
    archive,
    backup,
    capacity,
    health,
    integrity,
    maintenance_window,
    offsite,
    offsite_restore,
    reindex,
    restore_test,
    retention,
    table_stats,
    vacuum,
)
from ops_pipelines.assets.common import Fleet, Fleets
from ops_pipelines.capability import FIRST_WEEK, AssetNames, Capability, Part
from ops_pipelines.config import DatabaseConfig, OpsConfig

__all__ = ["CAPABILITIES", "FIRST_WEEK", "Capability", "fleets", "in_use", "maintenance_assets"]


def _always(*names: str) -> AssetNames:
    return lambda config, db: list(names)


def _with_s3(name: str) -> AssetNames:
    return lambda config, db: [name] if config.backup_store.s3 else []


def _with_window_work(config: OpsConfig, db: DatabaseConfig) -> list[str]:
    work = db.maintenance_window
    return ["maintenance_window"] if work.vacuum_full_tables or work.full_reindex else []


def _archive_rules(config: OpsConfig, db: DatabaseConfig) -> list[str]:
    return [f"archive_{rule.name}" for rule in db.archive]


CAPABILITIES: tuple[Capability, ...] = (
    Capability("table_stats", (Part(table_stats.build, _always("table_stats")),), schedule=None),
    Capability(
        "backup",
        (
            Part(backup.build, _always("backup")),
            Part(retention.build, _always("backup_retention")),
            Part(offsite.build, _with_s3("offsite_copy")),
        ),
        schedule="backup",
        extra_checks=(("restore_test", "restore_recent"),),  # a lapse in restore testing shows with every backup
    ),
    Capability("restore_test", (Part(restore_test.build, _always("restore_test")),), schedule=FIRST_WEEK),
    Capability(
        "offsite_restore_test",
        (Part(offsite_restore.build, _with_s3("offsite_restore_test")),),
        schedule=FIRST_WEEK,
    ),
    Capability(
        "vacuum",
        (Part(vacuum.build, _always("vacuum_analyze")),),
        schedule="vacuum",
        refreshes=("table_stats",),
        maintenance=True,
    ),
    Capability(
        "reindex",
        (Part(reindex.build, _always("reindex")),),
        schedule="reindex",
        refreshes=("table_stats",),
        maintenance=True,
    ),
    Capability(
        "maintenance_window",
        (Part(maintenance_window.build, _with_window_work),),
        schedule=FIRST_WEEK,
        maintenance=True,
    ),
    Capability("archive", (Part(archive.build, _archive_rules),), schedule="archive", maintenance=True),
    Capability(
        "capacity",
        (Part(capacity.build, _always("capacity_sample", "capacity_forecast")),),
        schedule="capacity_sample",
    ),
    # probed by health_probe_sensor every schedules.health, without runs (automation/health.py)
    Capability("health", (Part(health.build, _always("health")),), schedule=None),
    Capability("integrity", (Part(integrity.build, _always("integrity")),), schedule="integrity"),
)


def in_use(config: OpsConfig) -> list[Capability]:
    """The capabilities at least one configured database has, in registry order."""
    return [c for c in CAPABILITIES if any(c.assets(config, db) for db in config.databases)]


def fleets(config: OpsConfig) -> Fleets:
    """Per asset name, the databases it is built for (its partitions), in config order."""
    members: dict[str, list[DatabaseConfig]] = {}
    for capability in CAPABILITIES:
        for db in config.databases:
            for name in capability.assets(config, db):
                members.setdefault(name, []).append(db)
    return {name: Fleet(tuple(databases)) for name, databases in members.items()}


def maintenance_assets(config: OpsConfig) -> list[str]:
    """The assets whose runs the weekly report lists as maintenance done."""
    return [
        name
        for capability in in_use(config)
        if capability.maintenance
        for name in dict.fromkeys(n for db in config.databases for n in capability.assets(config, db))
    ]
