"""The one entry point Dagster loads: definitions built from the YAML config.

`build_definitions(config)` is pure (tests and benchmarks call it with any config); `defs` reads
the config named by OPS_PIPELINES_CONFIG when Dagster loads the code location, not at import.
Each capability's assets are built once, partitioned by database: the code location's size does
not grow with the number of databases, only its partition lists do.
"""

import dagster as dg

from ops_pipelines import registry
from ops_pipelines.assets import report
from ops_pipelines.automation import (
    alertmanager,
    alerts,
    database_status,
    health,
    instance_cleanup,
    jobs,
    metrics_textfile,
    recover,
    schedules,
    sensors,
)
from ops_pipelines.config import OpsConfig, load_config_from_env


def build_definitions(config: OpsConfig) -> dg.Definitions:
    fleets = registry.fleets(config)
    capabilities = dg.Definitions.merge(*(c.build(config, fleets) for c in registry.in_use(config)))
    asset_graph = capabilities.resolve_asset_graph()
    assets = dg.Definitions.merge(capabilities, report.build(config, asset_graph, registry.maintenance_assets(config)))
    capability_jobs = jobs.capability_jobs(config, fleets)
    cleanup_job, cleanup_schedule = instance_cleanup.build(config.timezone)
    automation = dg.Definitions(
        jobs=[*jobs.build(capability_jobs), cleanup_job, recover.build(config)],
        schedules=[*schedules.build(config, capability_jobs), cleanup_schedule],
        sensors=[
            *sensors.build(config, capability_jobs),
            *alerts.build(config, asset_graph),
            *alertmanager.build(config, asset_graph),
            *metrics_textfile.build(config, asset_graph),
            *health.build(config, next((j for j in capability_jobs if j.capability == "health"), None)),
        ],
    )
    return dg.Definitions.merge(assets, automation, database_status.build(config, asset_graph), EXECUTION)


# Every step of every capability drives an external program (pg_dump, pg_restore, zstd) or SQL on
# the database: none needs a process of its own. Dagster's default executor starts a subprocess per
# step and per check, each importing Dagster and this code location again — most of a backup run's
# wall time (bench/RESULTS.md, "Run overhead"). In-process, the run worker runs the steps itself,
# one after the other; one run per database still holds (the run queue), and databases still run
# side by side. It applies to every job and to the UI's "Materialize" (Dagster's implicit asset job).
# A future capability whose steps need CPU in parallel would set `executor_def` on its own job.
EXECUTION = dg.Definitions(executor=dg.in_process_executor)


def capability_job(definitions: dg.Definitions, config: OpsConfig, database: str, capability: str) -> dg.JobDefinition:
    """The job a schedule launches for one capability of `database`; execute it with `partition_key=database`."""
    found = jobs.job_for(jobs.capability_jobs(config, registry.fleets(config)), capability, database)
    if found is None:
        raise KeyError(f"{database} has no {capability}")
    return found.job(definitions)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_config_from_env())
