"""What a capability is (see registry.py for the list of them): a small record the asset factories
receive, so they read their own entry (its name is their group) without importing the registry,
which imports them."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

from ops_pipelines.config import DatabaseConfig, OpsConfig

if TYPE_CHECKING:
    from ops_pipelines.assets.common import Fleets

FIRST_WEEK = "first_week"  # schedules.maintenance_window, in the first week of the month only

AssetNames = Callable[[OpsConfig, DatabaseConfig], list[str]]


@dataclass(frozen=True)
class Part:
    """One module's share of a capability: its factory, and the assets it makes for a database."""

    build: Callable[[OpsConfig, "Capability", "Fleets"], dg.Definitions]  # every asset of the part, partitioned
    assets: AssetNames


@dataclass(frozen=True)
class Capability:
    name: str
    parts: tuple[Part, ...]
    schedule: str | None
    refreshes: tuple[str, ...] = ()
    extra_checks: tuple[tuple[str, str], ...] = ()  # (asset, check) of other capabilities its runs evaluate
    maintenance: bool = False

    def assets(self, config: OpsConfig, db: DatabaseConfig) -> list[str]:
        """This capability's own assets for `db`; empty when it does not exist for that database."""
        return [name for part in self.parts for name in part.assets(config, db)]

    def build(self, config: OpsConfig, fleets: "Fleets") -> dg.Definitions:
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
