"""What a capability is, and the records its factories and the registry share.

A capability is what one scheduled run does on one database (`backup`, `vacuum`, `archive` ...).
Each lives in one folder under `capabilities/`, whose `__init__.py` declares its `CAPABILITY`; the
registry lists them. The records here sit below both so neither imports the other: a capability's
factories receive their own `Capability` (its name is their group), the `Fleet` each asset is built
for, and, for its sensors, the `CapabilityJob`s the registry made of it.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from ops_pipelines.config import DatabaseConfig, OpsConfig
from ops_pipelines.errors import OpsError
from ops_pipelines.history import DATABASE_TAG

FIRST_WEEK = "first_week"  # schedules.maintenance_window, in the first week of the month only
CAPABILITY_TAG = "ops_pipelines/capability"

AssetNames = Callable[[OpsConfig, DatabaseConfig], list[str]]


@dataclass(frozen=True)
class Fleet:
    """The databases one asset exists for, in config order; its partitions are their names."""

    databases: tuple[DatabaseConfig, ...]
    partitions: dg.StaticPartitionsDefinition = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "partitions", dg.StaticPartitionsDefinition([db.name for db in self.databases]))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(db.name for db in self.databases)

    def database(self, partition_key: str | None) -> DatabaseConfig:
        """The configured database a run's partition names; a clear error for any other key."""
        for db in self.databases:
            if db.name == partition_key:
                return db
        if partition_key is None:
            raise OpsError("this asset is partitioned by database: choose one (--partition NAME, or in the UI)")
        raise OpsError(f'no configured database "{partition_key}" has this asset (it has: {self.describe()})')

    def describe(self, limit: int = 10) -> str:
        names = self.names
        shown = ", ".join(names[:limit])
        return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


Fleets = dict[str, Fleet]  # asset name -> the databases it is built for


@dataclass(frozen=True)
class Part:
    """One module's share of a capability: its factory, and the assets it makes for a database."""

    build: Callable[[OpsConfig, "Capability", Fleets], dg.Definitions]  # every asset of the part, partitioned
    assets: AssetNames


SensorHook = Callable[[OpsConfig, "tuple[CapabilityJob, ...]"], list[dg.SensorDefinition]]


@dataclass(frozen=True)
class Capability:
    """One capability, declared once (in its folder's `__init__.py`).

    - `parts`: each a module's `build(config, capability, fleets)` and the assets that module makes
      for a database — none means the database is not a partition of them; no asset in any part
      means the capability does not exist for that database;
    - `schedule`: the key of `config.schedules` that runs it, FIRST_WEEK (the monthly window), or None;
    - `refreshes`: assets of another capability each of its runs materializes first (vacuum reads
      fresh table statistics);
    - `extra_checks`: (asset, check) of other capabilities its runs evaluate too;
    - `maintenance`: whether the weekly report lists its runs under "maintenance this week";
    - `sensors`: its sensors, given its own jobs (more than one when its assets exist for different
      sets of databases).
    """

    name: str
    parts: tuple[Part, ...]
    schedule: str | None
    refreshes: tuple[str, ...] = ()
    extra_checks: tuple[tuple[str, str], ...] = ()
    maintenance: bool = False
    sensors: SensorHook | None = None

    def assets(self, config: OpsConfig, db: DatabaseConfig) -> list[str]:
        """This capability's own assets for `db`; empty when it does not exist for that database."""
        return [name for part in self.parts for name in part.assets(config, db)]

    def build(self, config: OpsConfig, fleets: Fleets) -> dg.Definitions:
        """The capability's assets, each with a partition per database that has it (`fleets`)."""
        built = [
            part.build(config, self, fleets)
            for part in self.parts
            if any(part.assets(config, db) for db in config.databases)
        ]
        return dg.Definitions.merge(*built)

    def cron(self, config: OpsConfig) -> str | None:
        key = "maintenance_window" if self.schedule == FIRST_WEEK else self.schedule
        return getattr(config.schedules, key) if key else None

    def build_sensors(self, config: OpsConfig, jobs: "tuple[CapabilityJob, ...]") -> list[dg.SensorDefinition]:
        return self.sensors(config, jobs) if self.sensors is not None and jobs else []


def always(*names: str) -> AssetNames:
    """Asset names every database has."""
    return lambda config, db: list(names)


def with_s3(name: str) -> AssetNames:
    """An asset every database has when an S3 store is configured."""
    return lambda config, db: [name] if config.backup_store.s3 else []


@dataclass(frozen=True)
class CapabilityJob:
    """What one run of a capability on one database materializes and checks."""

    spec: Capability
    name: str  # `<capability>_job`, unless its assets need several jobs
    assets: tuple[str, ...]  # the assets it refreshes first, then its own
    checks: tuple[dg.AssetCheckKey, ...]  # checks of other capabilities' assets it evaluates too
    fleet: Fleet

    @property
    def capability(self) -> str:
        return self.spec.name

    @property
    def label(self) -> str:
        """The job's name without `_job`: its schedule's name starts with it."""
        return self.name.removesuffix("_job")

    def definition(self):
        selection = dg.AssetSelection.assets(*(dg.AssetKey(name) for name in self.assets))
        if self.checks:
            selection = selection | dg.AssetSelection.checks(*self.checks)
        when = f"Scheduled by `{self.spec.schedule}` in config.schedules. " if self.spec.schedule else ""
        return dg.define_asset_job(
            self.name,
            selection=selection,
            description=f"{self.capability} of one database (a run per partition): {', '.join(self.assets)}. {when}"
            "Runs of one database queue behind each other; different databases run side by side.",
            tags={CAPABILITY_TAG: self.capability},
        )

    def run_request(
        self, database: str, run_key: str, tags: dict[str, str] | None = None, run_config: dict | None = None
    ) -> dg.RunRequest:
        return dg.RunRequest(
            run_key=run_key,
            job_name=self.name,
            partition_key=database,
            run_config=run_config or {},
            tags={DATABASE_TAG: database, CAPABILITY_TAG: self.capability, **(tags or {})},
        )

    def job(self, definitions: dg.Definitions) -> dg.JobDefinition:
        """This capability's job, resolved (tests and scripts execute it with `partition_key=`)."""
        return definitions.resolve_job_def(self.name)
