"""The one entry point Dagster loads: definitions built from the YAML config.

`build_definitions(config)` is pure (tests and benchmarks call it with any config); `defs` reads
the config named by OPS_PIPELINES_CONFIG when Dagster loads the code location, not at import.
Each capability's assets are built once, partitioned by database: the code location's size does
not grow with the number of databases, only its partition lists do.
"""

import dagster as dg

from ops_pipelines import registry
from ops_pipelines.automation import (
    alertmanager,
    alerts,
    database_status,
    instance_cleanup,
    jobs,
    metrics_textfile,
    recover,
    report,
    schedules,
)
from ops_pipelines.capability import Capability
from ops_pipelines.config import OpsConfig, load_config_from_env


def build_definitions(config: OpsConfig, registered: tuple[Capability, ...] = registry.CAPABILITIES) -> dg.Definitions:
    """`registered`: the capabilities to build (the registry's; a test adds its own)."""
    fleets = registry.fleets(config, registered)
    in_use = registry.in_use(config, registered)
    capabilities = dg.Definitions.merge(*(c.build(config, fleets) for c in in_use))
    asset_graph = capabilities.resolve_asset_graph()
    maintenance = registry.maintenance_assets(config, registered)
    assets = dg.Definitions.merge(capabilities, report.build(config, asset_graph, maintenance))
    capability_jobs = registry.capability_jobs(config, fleets, registered)
    cleanup_job, cleanup_schedule = instance_cleanup.build(config.timezone)
    automation = dg.Definitions(
        jobs=[*jobs.build(capability_jobs), cleanup_job, recover.build(config)],
        schedules=[*schedules.build(config, capability_jobs), cleanup_schedule],
        sensors=[
            *(s for c in in_use for s in c.build_sensors(config, tuple(j for j in capability_jobs if j.spec == c))),
            *alerts.build(config, asset_graph),
            *alertmanager.build(config, asset_graph),
            *metrics_textfile.build(config, asset_graph),
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
    found = registry.job_for(registry.capability_jobs(config, registry.fleets(config)), capability, database)
    if found is None:
        raise KeyError(f"{database} has no {capability}")
    return found.job(definitions)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_config_from_env())
