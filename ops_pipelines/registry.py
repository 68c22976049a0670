"""Every capability, declared once.

A capability is what one scheduled run does on one database: `backup` (dump, retention, off-site
copy), `vacuum`, `archive` ... Its entry says:

- its name (the run tag `ops_pipelines/capability`, the schedule's name);
- its parts: each a module's `build(config, db, capability)` and the assets that module makes for a
  database — none means the part is not built; no asset in any part means the capability does not
  exist for that database;
- `refreshes`: assets of another capability each of its runs materializes first (vacuum reads
  fresh table statistics);
- `schedule`: the key of `config.schedules` that runs it, FIRST_WEEK (the monthly window), or None;
- `exclusive`: whether its assets take the database's slot (the pool `db_<name>`, limit 1), so two
  heavy actions never overlap on one database;
- `maintenance`: whether the weekly report lists its runs under "maintenance this week".

Definitions, jobs, schedules, sensors and the report read this list. Adding a capability means one
module under assets/ and one entry here.
"""

from ops_pipelines.assets import (
    archive,
    backup,
    capacity,
    maintenance_window,
    offsite,
    reindex,
    restore_test,
    retention,
    table_stats,
    vacuum,
)
from ops_pipelines.capability import FIRST_WEEK, AssetNames, Capability, Part
from ops_pipelines.config import DatabaseConfig, OpsConfig

__all__ = ["CAPABILITIES", "FIRST_WEEK", "Capability", "maintenance_assets", "present"]


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
    Capability("table_stats", (Part(table_stats.build, _always("table_stats")),), schedule=None, exclusive=False),
    Capability(
        "backup",
        (
            Part(backup.build, _always("backup")),
            Part(retention.build, _always("backup_retention")),
            Part(offsite.build, _with_s3("offsite_copy")),
        ),
        schedule="backup",
        exclusive=True,
        extra_checks=(("restore_test", "restore_recent"),),  # a lapse in restore testing shows with every backup
    ),
    Capability(
        "restore_test", (Part(restore_test.build, _always("restore_test")),), schedule=FIRST_WEEK, exclusive=True
    ),
    Capability(
        "vacuum",
        (Part(vacuum.build, _always("vacuum_analyze")),),
        schedule="vacuum",
        exclusive=True,
        refreshes=("table_stats",),
        maintenance=True,
    ),
    Capability(
        "reindex",
        (Part(reindex.build, _always("reindex")),),
        schedule="reindex",
        exclusive=True,
        refreshes=("table_stats",),
        maintenance=True,
    ),
    Capability(
        "maintenance_window",
        (Part(maintenance_window.build, _with_window_work),),
        schedule=FIRST_WEEK,
        exclusive=True,
        maintenance=True,
    ),
    Capability("archive", (Part(archive.build, _archive_rules),), schedule="archive", exclusive=True, maintenance=True),
    Capability(
        "capacity",
        (Part(capacity.build, _always("capacity_sample", "capacity_forecast")),),
        schedule="capacity_sample",
        exclusive=False,
    ),
)


def present(config: OpsConfig, db: DatabaseConfig) -> list[Capability]:
    """The capabilities `db` has, in registry order."""
    return [capability for capability in CAPABILITIES if capability.assets(config, db)]


def maintenance_assets(config: OpsConfig) -> dict[str, list[str]]:
    """Per database, the assets whose runs the weekly report lists as maintenance done."""
    return {
        db.name: [
            name
            for capability in present(config, db)
            if capability.maintenance
            for name in capability.assets(config, db)
        ]
        for db in config.databases
    }
