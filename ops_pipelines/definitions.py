"""The one entry point Dagster loads: definitions built from the YAML config.

`build_definitions(config)` is pure (tests and benchmarks call it with any config); `defs` reads
the config named by OPS_PIPELINES_CONFIG when Dagster loads the code location, not at import.
"""

import dagster as dg

from ops_pipelines import registry
from ops_pipelines.assets import report
from ops_pipelines.automation import alerts, instance_cleanup, jobs, metrics_textfile, schedules, sensors
from ops_pipelines.config import DatabaseConfig, OpsConfig, load_config_from_env


def build_definitions(config: OpsConfig) -> dg.Definitions:
    per_database = dg.Definitions.merge(*(build_database(config, db) for db in config.databases))
    asset_graph = per_database.resolve_asset_graph()
    capabilities = jobs.capabilities(config, asset_graph)
    assets = dg.Definitions.merge(per_database, report.build(config, asset_graph, registry.maintenance_assets(config)))
    database_jobs = jobs.build(config)
    cleanup_job, cleanup_schedule = instance_cleanup.build(config.timezone)
    automation = dg.Definitions(
        jobs=[*database_jobs, cleanup_job],
        schedules=[*schedules.build(config, capabilities), cleanup_schedule],
        sensors=[
            *sensors.build(config, database_jobs, capabilities),
            *alerts.build(config, asset_graph),
            *metrics_textfile.build(config, asset_graph),
        ],
    )
    return dg.Definitions.merge(assets, automation)


def capability_job(definitions: dg.Definitions, config: OpsConfig, database: str, capability: str) -> dg.JobDefinition:
    """The run a schedule would launch for one capability of one database, as a job to execute."""
    return jobs.capabilities(config, definitions.resolve_asset_graph())[database][capability].job(definitions)


def build_database(config: OpsConfig, db: DatabaseConfig) -> dg.Definitions:
    """Every capability the registry gives `db`, built."""
    return dg.Definitions.merge(*(capability.build(config, db) for capability in registry.present(config, db)))


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_config_from_env())
