"""One job per database (`ops_<db>`, all its assets and checks); schedules and sensors launch it
for one capability at a time (backup, vacuum ...) by choosing the run's assets and checks.

Why not a job per database and capability: Dagster resolves every job against the whole asset
graph when the code location loads, so jobs x assets grows with the square of the number of
databases; at 50 databases seven jobs each took loading over 3 s. The database's pool still
serialises its runs (pools are checked per run, on the steps the run executes).
"""

from dataclasses import dataclass

import dagster as dg

from ops_pipelines import registry
from ops_pipelines.assets.common import asset_key
from ops_pipelines.assets.report import REPORT_KEY
from ops_pipelines.config import DatabaseConfig, OpsConfig


def database_job_name(db: DatabaseConfig) -> str:
    return f"ops_{db.name}"


@dataclass(frozen=True)
class CapabilityRun:
    """What one run of one capability on one database materializes and checks."""

    spec: registry.Capability
    db: DatabaseConfig
    assets: tuple[dg.AssetKey, ...]
    checks: tuple[dg.AssetCheckKey, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def job_name(self) -> str:
        return database_job_name(self.db)

    def run_request(
        self, run_key: str, tags: dict[str, str] | None = None, run_config: dict | None = None
    ) -> dg.RunRequest:
        return dg.RunRequest(
            run_key=run_key,
            job_name=self.job_name,
            asset_selection=list(self.assets),
            asset_check_keys=list(self.checks),
            run_config=run_config or {},
            tags={"ops_pipelines/database": self.db.name, "ops_pipelines/capability": self.name, **(tags or {})},
        )

    def job(self, definitions: dg.Definitions) -> dg.JobDefinition:
        """This capability's run as an executable job (tests, scripts)."""
        return definitions.resolve_job_def(self.job_name).get_subset(
            asset_selection=set(self.assets), asset_check_selection=set(self.checks)
        )


def capabilities(config: OpsConfig, graph) -> dict[str, dict[str, CapabilityRun]]:
    """{database: {capability name: its run}} from the registry; the checks read from the resolved asset graph."""
    result: dict[str, dict[str, CapabilityRun]] = {}
    for db in config.databases:
        result[db.name] = {}
        for spec in registry.present(config, db):
            keys = tuple(asset_key(db, n) for n in (*spec.refreshes, *spec.assets(config, db)))
            checks = [check for key in keys for check in sorted(graph.get(key).check_keys, key=str)]
            checks += [dg.AssetCheckKey(asset_key(db, asset), check) for asset, check in spec.extra_checks]
            result[db.name][spec.name] = CapabilityRun(spec, db, keys, tuple(checks))
    return result


REPORT_JOB = "maintenance_report_job"


def build(config: OpsConfig) -> list:
    jobs = [
        dg.define_asset_job(
            database_job_name(db),
            selection=dg.AssetSelection.groups(db.name),
            description=f"Every asset and check of {db.name}. Schedules and sensors run one capability at a time "
            "(tag ops_pipelines/capability); in the UI, select the assets to run.",
            tags={"ops_pipelines/database": db.name},
        )
        for db in config.databases
    ]
    jobs.append(dg.define_asset_job(REPORT_JOB, selection=[REPORT_KEY], description="The weekly maintenance report."))
    return jobs
