"""Every capability, listed once; and what is derived from the list: which capabilities are in use,
the databases each asset is built for (`fleets`), and each capability's job(s).

Each capability is one folder under `capabilities/`, whose `CAPABILITY` (capability.py says what
it declares) is named here. Each asset is built once, partitioned by the databases that have it.
Two runs of one database never overlap, whatever the capability: the run queue admits one run per
partition key. Definitions, jobs, schedules, sensors and the report read this list. Adding a
capability means one folder under capabilities/ and one entry here; nothing in definitions.py or
automation/ changes.
"""

import dagster as dg

from ops_pipelines.capabilities import (
    archive,
    backup,
    capacity,
    health,
    integrity,
    maintenance_window,
    offsite_restore_test,
    reindex,
    restore_test,
    table_stats,
    vacuum,
)
from ops_pipelines.capability import Capability, CapabilityJob, Fleet, Fleets
from ops_pipelines.config import DatabaseConfig, OpsConfig

__all__ = ["CAPABILITIES", "capability_jobs", "fleets", "in_use", "job_for", "maintenance_assets"]

CAPABILITIES: tuple[Capability, ...] = (
    table_stats.CAPABILITY,
    backup.CAPABILITY,
    restore_test.CAPABILITY,
    offsite_restore_test.CAPABILITY,
    vacuum.CAPABILITY,
    reindex.CAPABILITY,
    maintenance_window.CAPABILITY,
    archive.CAPABILITY,
    capacity.CAPABILITY,
    health.CAPABILITY,
    integrity.CAPABILITY,
)


def in_use(config: OpsConfig, registered: tuple[Capability, ...] = CAPABILITIES) -> list[Capability]:
    """The capabilities at least one configured database has, in registry order."""
    return [c for c in registered if any(c.assets(config, db) for db in config.databases)]


def fleets(config: OpsConfig, registered: tuple[Capability, ...] = CAPABILITIES) -> Fleets:
    """Per asset name, the databases it is built for (its partitions), in config order."""
    members: dict[str, list[DatabaseConfig]] = {}
    for capability in registered:
        for db in config.databases:
            for name in capability.assets(config, db):
                members.setdefault(name, []).append(db)
    return {name: Fleet(tuple(databases)) for name, databases in members.items()}


def maintenance_assets(config: OpsConfig, registered: tuple[Capability, ...] = CAPABILITIES) -> list[str]:
    """The assets whose runs the weekly report lists as maintenance done."""
    return [
        name
        for capability in in_use(config, registered)
        if capability.maintenance
        for name in dict.fromkeys(n for db in config.databases for n in capability.assets(config, db))
    ]


def capability_jobs(
    config: OpsConfig, fleets: Fleets, registered: tuple[Capability, ...] = CAPABILITIES
) -> list[CapabilityJob]:
    """Every capability's job(s): its assets grouped by the databases that have them.

    A capability whose assets exist for different sets of databases (archive rules that only some
    databases have) gets one job per set: a Dagster job runs assets of one partitions definition.
    """
    jobs = []
    for spec in in_use(config, registered):
        names = list(dict.fromkeys(n for db in config.databases for n in spec.assets(config, db)))
        groups: list[tuple[Fleet, list[str]]] = []
        for name in names:
            group = next((members for fleet, members in groups if fleet == fleets[name]), None)
            if group is None:
                groups.append((fleets[name], [name]))
            else:
                group.append(name)
        for fleet, members in groups:
            refreshes = [name for name in spec.refreshes if fleets.get(name) == fleet]
            checks = tuple(
                dg.AssetCheckKey(dg.AssetKey(asset), check)
                for asset, check in spec.extra_checks
                if fleets.get(asset) == fleet
            )
            # `_job`: a job's graph shares the namespace of ops, and `backup` is the backup asset's op.
            name = "__".join([spec.name, *(_short(spec, m) for m in members)]) if len(groups) > 1 else spec.name
            name += "_job"
            jobs.append(CapabilityJob(spec, name, (*refreshes, *members), checks, fleet))
    return jobs


def _short(spec: Capability, asset: str) -> str:
    return asset.removeprefix(f"{spec.name}_")


def job_for(jobs: list[CapabilityJob], capability: str, database: str) -> CapabilityJob | None:
    """The job that runs `capability` on `database` (the first, when its archive rules need several), or None."""
    return next((j for j in jobs if j.capability == capability and database in j.fleet.names), None)
