"""One asset job per capability (`backup`, `vacuum`, `archive` ...), partitioned by database:
schedules and sensors launch it for one database at a time (a run per partition).

A capability whose assets exist for different sets of databases (archive rules that only some
databases have) gets one job per set: a Dagster job runs assets of one partitions definition.
"""

from dataclasses import dataclass

import dagster as dg

from ops_pipelines import registry
from ops_pipelines.assets.common import Fleet, Fleets
from ops_pipelines.assets.report import REPORT_KEY
from ops_pipelines.config import OpsConfig
from ops_pipelines.history import DATABASE_TAG

CAPABILITY_TAG = "ops_pipelines/capability"
REPORT_JOB = "maintenance_report_job"


@dataclass(frozen=True)
class CapabilityJob:
    """What one run of a capability on one database materializes and checks."""

    spec: registry.Capability
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


def capability_jobs(config: OpsConfig, fleets: Fleets) -> list[CapabilityJob]:
    """Every capability's job(s), from the registry: its assets grouped by the databases that have them."""
    jobs = []
    for spec in registry.in_use(config):
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


def _short(spec: registry.Capability, asset: str) -> str:
    return asset.removeprefix(f"{spec.name}_")


def job_for(jobs: list[CapabilityJob], capability: str, database: str) -> CapabilityJob | None:
    """The job that runs `capability` on `database` (the first, when its archive rules need several), or None."""
    return next((j for j in jobs if j.capability == capability and database in j.fleet.names), None)


def build(jobs: list[CapabilityJob]) -> list:
    return [
        *(job.definition() for job in jobs),
        dg.define_asset_job(REPORT_JOB, selection=[REPORT_KEY], description="The weekly maintenance report."),
    ]
