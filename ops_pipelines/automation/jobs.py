"""One job per database (`ops_<db>`, all its assets and checks); schedules and sensors launch it
for one capability at a time (backup, vacuum ...) by choosing the run's assets and checks.

Why not a job per database and capability: Dagster resolves every job against the whole asset
graph when the code location loads, so jobs x assets grows with the square of the number of
databases; at 50 databases seven jobs each took loading over 3 s. The database's pool still
serialises its runs (pools are checked per run, on the steps the run executes).
"""

from dataclasses import dataclass

import dagster as dg

from ops_pipelines.assets.common import asset_key
from ops_pipelines.assets.report import REPORT_KEY
from ops_pipelines.config import DatabaseConfig, OpsConfig


def database_job_name(db: DatabaseConfig) -> str:
    return f"ops_{db.name}"


@dataclass(frozen=True)
class Capability:
    """What one run of one capability on one database materializes and checks."""

    name: str
    db: DatabaseConfig
    assets: tuple[dg.AssetKey, ...]
    checks: tuple[dg.AssetCheckKey, ...]

    @property
    def job_name(self) -> str:
        return database_job_name(self.db)

    def run_request(self, run_key: str, tags: dict[str, str] | None = None, run_config: dict | None = None) -> dg.RunRequest:
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
            asset_selection=set(self.assets), asset_check_selection=set(self.checks))


def capability_assets(config: OpsConfig, db: DatabaseConfig) -> dict[str, list[str]]:
    """Asset names per capability, for the capabilities this database has."""
    window = db.maintenance_window
    found = {
        "backup": ["backup", "backup_retention"] + (["offsite_copy"] if config.backup_store.s3 else []),
        "restore_test": ["restore_test"],
        "vacuum": ["table_stats", "vacuum_analyze"],
        "reindex": ["table_stats", "reindex"],
        "archive": [f"archive_{rule.name}" for rule in db.archive],
        "capacity": ["capacity_sample", "capacity_forecast"] if config.metrics.dsn else [],
        "maintenance_window": ["maintenance_window"] if window.vacuum_full_tables or window.full_reindex else [],
    }
    return {name: assets for name, assets in found.items() if assets}


def capabilities(config: OpsConfig, graph) -> dict[str, dict[str, Capability]]:
    """{database: {capability: Capability}}, the checks read from the resolved asset graph."""
    result: dict[str, dict[str, Capability]] = {}
    for db in config.databases:
        result[db.name] = {}
        for name, asset_names in capability_assets(config, db).items():
            keys = tuple(asset_key(db, n) for n in asset_names)
            checks = [check for key in keys for check in sorted(graph.get(key).check_keys, key=str)]
            if name == "backup":  # a lapse in restore testing shows with every daily backup
                checks.append(dg.AssetCheckKey(asset_key(db, "restore_test"), "restore_recent"))
            result[db.name][name] = Capability(name, db, keys, tuple(checks))
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
