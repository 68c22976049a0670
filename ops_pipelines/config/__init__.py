"""The one YAML file a DBA edits: its model, `${VAR}` interpolation and validation.

    fields.py     field types and `Section`, the strict frozen base of every section
    instance.py   the whole instance's sections: store, retention, alerts, e-mail, schedules, metrics, reports
    database.py   per-database settings, one model per capability
    archive.py    archive rules
    model.py      `OpsConfig`: only assembles the sections
    loader.py     the YAML read, interpolated, defaulted and validated; errors in one line

`load_config(path)` returns a validated, immutable `OpsConfig` or raises `ConfigError` with one line
naming the file and the key: `config.yaml: databases[2].archive[0].older_than: expected a duration
like "365 days" or "26h", got "1y"`. Nothing here reads the environment at import time.

A `defaults:` section holds per-database settings shared by every database; a database's own
settings win, key by key (lists are replaced, not merged).
"""

from ops_pipelines.config.archive import ArchiveChild, ArchiveDestination, ArchiveRule, KeyColumns
from ops_pipelines.config.database import (
    BackupSettings,
    CapacitySettings,
    DatabaseSettings,
    HealthSettings,
    IntegritySettings,
    MaintenanceWindowSettings,
    ReindexSettings,
    RestoreTestSettings,
    Timeouts,
    VacuumSettings,
)
from ops_pipelines.config.fields import (
    AbsolutePath,
    Cron,
    Dsn,
    DurationText,
    FileMode,
    FixedDuration,
    Name,
    QualifiedName,
    Ratio,
    Section,
    Size,
    check_timezone,
    machine_timezone,
    parse_qualified_name,
)
from ops_pipelines.config.instance import (
    REPORTS_FOLDER,
    Alerts,
    BackupStore,
    Email,
    Metrics,
    Reports,
    Retention,
    S3Store,
    Schedules,
)
from ops_pipelines.config.loader import (
    CONFIG_ENV_VAR,
    DEMO_HINT,
    launchpad_dsn,
    load_config,
    load_config_from_env,
    parse_config,
)
from ops_pipelines.config.model import DatabaseConfig, OpsConfig, UnknownDatabase
from ops_pipelines.errors import ConfigError  # raised by the loader: imported from here as well

__all__ = [
    "ConfigError",
    "AbsolutePath",
    "Cron",
    "Dsn",
    "DurationText",
    "FileMode",
    "FixedDuration",
    "Name",
    "QualifiedName",
    "Ratio",
    "Section",
    "Size",
    "check_timezone",
    "machine_timezone",
    "parse_qualified_name",
    "Alerts",
    "BackupStore",
    "Email",
    "Metrics",
    "REPORTS_FOLDER",
    "Reports",
    "Retention",
    "S3Store",
    "Schedules",
    "BackupSettings",
    "CapacitySettings",
    "DatabaseSettings",
    "HealthSettings",
    "IntegritySettings",
    "MaintenanceWindowSettings",
    "ReindexSettings",
    "RestoreTestSettings",
    "Timeouts",
    "VacuumSettings",
    "ArchiveChild",
    "ArchiveDestination",
    "ArchiveRule",
    "KeyColumns",
    "DatabaseConfig",
    "OpsConfig",
    "UnknownDatabase",
    "CONFIG_ENV_VAR",
    "DEMO_HINT",
    "launchpad_dsn",
    "load_config",
    "load_config_from_env",
    "parse_config",
]
