"""Loading `defs`: keys, groups, the entry point, and Dagster's own validation."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ops_pipelines.config import CONFIG_ENV_VAR, parse_config
from ops_pipelines.definitions import build_definitions, defs
from ops_pipelines.errors import ConfigError

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"
THREE_DATABASES = """\
timezone: Asia/Ho_Chi_Minh
backup_store:
  local_dir: /tmp/ops_test_backups
  s3: {bucket: erp-backups, prefix: prod/, endpoint_url: "http://127.0.0.1:9", region: ap-southeast-1}
metrics: {dsn: "host=metrics dbname=ops_metrics", textfile_path: /tmp/ops_test_textfile/ops_pipelines.prom}
alerts: {webhook_url: "https://hooks.slack.example/services/T0/B0/token"}
databases:
  - {name: erp_prod, dsn: "host=db1 dbname=erp", maintenance_window: {vacuum_full_tables: [public.audit_log]},
     archive: [{name: completed_orders, table: public.orders, age_column: completed_at, older_than: 365 days}]}
  - {name: erp_mes, dsn: "host=db2 dbname=mes"}
  - {name: erp_food, dsn: "host=db3 dbname=food"}
"""


def describe(definitions: dg.Definitions) -> list[str]:
    """Every asset key with its group, kinds and partitions (databases), every check with its
    partitions, every job, schedule and sensor: one per line."""
    graph = definitions.resolve_asset_graph()

    def partitions(partitions_def) -> str:
        return ",".join(partitions_def.get_partition_keys()) if partitions_def else "-"

    lines = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        lines.append(
            f"asset {key.to_user_string()} group={node.group_name} kinds={','.join(sorted(node.kinds))} "
            f"partitions={partitions(node.partitions_def)}"
        )
    for check_key in sorted(graph.asset_check_keys, key=str):
        spec = graph.get(check_key)
        partitioned = partitions(spec.partitions_def)
        lines.append(f"check {check_key.asset_key.to_user_string()}:{check_key.name} partitions={partitioned}")
    repo = definitions.get_repository_def()
    for job in sorted(repo.get_all_jobs(), key=lambda j: j.name):
        if not job.name.startswith("__"):
            assets = ",".join(sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys))
            lines.append(f"job {job.name} partitions={partitions(job.partitions_def)} assets={assets}")
    lines += [
        f"schedule {s.name} {s.cron_schedule} {s.execution_timezone}"
        for s in sorted(repo.schedule_defs, key=lambda s: s.name)
    ]
    lines += [f"sensor {s.name}" for s in sorted(repo.sensor_defs, key=lambda s: s.name)]
    return lines


def test_definitions_match_the_snapshot():
    """Any change to keys, checks, jobs, schedules or sensors shows here; update with OPS_UPDATE_SNAPSHOTS=1."""
    lines = describe(build_definitions(parse_config(THREE_DATABASES, {})))
    if os.environ.get("OPS_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text("\n".join(lines) + "\n")
    assert lines == SNAPSHOT.read_text().splitlines()


def test_every_database_is_a_partition_of_each_asset_it_has():
    definitions = build_definitions(parse_config(THREE_DATABASES, {}))
    graph = definitions.resolve_asset_graph()
    every = ["erp_prod", "erp_mes", "erp_food"]
    for name in ("table_stats", "backup", "restore_test", "vacuum_analyze", "capacity_forecast", "offsite_copy"):
        assert graph.get(dg.AssetKey(name)).partitions_def.get_partition_keys() == every, name
        assert graph.get(dg.AssetKey(name)).description
    # assets only some databases have are partitioned by those alone
    assert graph.get(dg.AssetKey("archive_completed_orders")).partitions_def.get_partition_keys() == ["erp_prod"]
    assert graph.get(dg.AssetKey("maintenance_window")).partitions_def.get_partition_keys() == ["erp_prod"]
    assert graph.get(dg.AssetKey("maintenance_report")).partitions_def is None


def test_an_asset_page_lists_only_the_schedules_and_sensors_that_materialize_it():
    """The UI lists, on an asset's page, the schedules and sensors whose job holds the asset. One job
    per capability (not per database) keeps that list to the asset's own capability."""
    repo = build_definitions(parse_config(THREE_DATABASES, {})).get_repository_def()

    def automations_of(asset: str) -> set[str]:
        targets = [(s.name, s.job_name) for s in repo.schedule_defs]
        targets += [(s.name, t.job_name) for s in repo.sensor_defs for t in s.targets]
        return {
            name
            for name, job_name in targets
            if job_name and dg.AssetKey(asset) in repo.get_job(job_name).asset_layer.executable_asset_keys
        }

    assert automations_of("backup") == {"backup_schedule", "missing_backup_sensor"}
    assert automations_of("restore_test") == {"restore_test_monthly", "restore_after_backup_sensor"}
    assert automations_of("vacuum_analyze") == {"vacuum_schedule"}
    assert automations_of("archive_completed_orders") == {"archive_schedule"}
    assert automations_of("maintenance_window") == {"maintenance_window_monthly"}
    assert automations_of("health") == {"health_probe_sensor"}  # it probes itself, without runs


def test_adding_or_removing_a_database_changes_partitions_only():
    """A database added to the config appears as a partition on reload; removing one removes its
    partition; the keys (and so the history of the others) stay."""
    three = build_definitions(parse_config(THREE_DATABASES, {})).resolve_asset_graph()
    four = build_definitions(
        parse_config(THREE_DATABASES + '  - {name: erp_new, dsn: "host=db4 dbname=new"}\n', {})
    ).resolve_asset_graph()
    two = build_definitions(
        parse_config(THREE_DATABASES.replace('  - {name: erp_food, dsn: "host=db3 dbname=food"}\n', ""), {})
    ).resolve_asset_graph()
    assert set(three.get_all_asset_keys()) == set(four.get_all_asset_keys()) == set(two.get_all_asset_keys())
    assert four.get(dg.AssetKey("backup")).partitions_def.get_partition_keys()[-1] == "erp_new"
    assert "erp_food" not in two.get(dg.AssetKey("backup")).partitions_def.get_partition_keys()


def test_defs_reads_the_config_named_by_the_env_var(monkeypatch, write_config):
    monkeypatch.setenv(CONFIG_ENV_VAR, str(write_config(THREE_DATABASES)))
    assert len(list(defs().resolve_asset_graph().get_all_asset_keys())) == len(
        list(build_definitions(parse_config(THREE_DATABASES, {})).resolve_asset_graph().get_all_asset_keys())
    )


def test_defs_refuses_to_load_without_a_config(monkeypatch):
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    with pytest.raises(ConfigError, match="OPS_PIPELINES_CONFIG is not set.*demo"):
        defs()


def _validate(env_config: str | None, cwd: Path) -> subprocess.CompletedProcess:
    # Not from the repository root: without DAGSTER_HOME, Dagster would read ./dagster.yaml,
    # the production instance config, whose connection variables are unset here.
    env = {k: v for k, v in os.environ.items() if k != CONFIG_ENV_VAR}
    if env_config:
        env[CONFIG_ENV_VAR] = env_config
    dagster = Path(sys.executable).with_name("dagster")
    return subprocess.run(
        [dagster, "definitions", "validate", "-m", "ops_pipelines.definitions"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.slow
def test_dagster_definitions_validate_passes(write_config, tmp_path):
    result = _validate(str(write_config(THREE_DATABASES)), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


@pytest.mark.slow
def test_dagster_definitions_validate_shows_the_config_error(write_config, tmp_path):
    path = write_config(THREE_DATABASES.replace("erp_mes", "erp-mes"))
    result = _validate(str(path), tmp_path)
    assert result.returncode != 0
    assert (
        f'{path}: databases[1].name: "erp-mes" is not a valid name: it becomes a Dagster partition key'
        in result.stdout + result.stderr
    )


def test_each_capability_builds_exactly_the_assets_the_registry_declares():
    """The registry is the one place that says which assets a capability has for a database: its
    factories must build those, and nothing else, partitioned by the databases that have them."""
    from ops_pipelines import registry
    from ops_pipelines.capability import FIRST_WEEK
    from ops_pipelines.config import Schedules

    minimal = parse_config("backup_store: {local_dir: /tmp/x}\ndatabases: [{name: bare, dsn: 'host=db'}]\n", {})
    for config in (parse_config(THREE_DATABASES, {}), minimal):
        fleets = registry.fleets(config)
        for capability in registry.in_use(config):
            declared = {
                dg.AssetKey(name): [db.name for db in config.databases if name in capability.assets(config, db)]
                for db in config.databases
                for name in capability.assets(config, db)
            }
            built = capability.build(config, fleets)
            keys = {key for assets_def in built.assets or [] for key in assets_def.keys}
            assert keys == set(declared), capability.name
            for key in keys:
                assert built.resolve_assets_def(key).partitions_def.get_partition_keys() == declared[key], key
    assert {c.schedule for c in registry.CAPABILITIES} <= {None, FIRST_WEEK, *Schedules.model_fields}
    bare = {c.name for c in registry.in_use(minimal)}  # its one database
    assert bare == {"table_stats", "backup", "restore_test", "vacuum", "reindex", "capacity", "health", "integrity"}


def test_a_capability_whose_assets_differ_per_database_gets_a_job_per_set():
    """Archive rules only some databases have: a Dagster job runs assets of one partitions definition,
    so each set of databases gets its own job and schedule, each naming its rules."""
    config = parse_config(
        """\
backup_store: {local_dir: /tmp/ops_test_backups}
databases:
  - {name: erp_a, dsn: "host=a", archive: [{name: orders, table: public.orders, age_column: at, older_than: 30 days},
                                           {name: logs, table: public.logs, age_column: at, older_than: 30 days}]}
  - {name: erp_b, dsn: "host=b", archive: [{name: orders, table: public.orders, age_column: at, older_than: 30 days}]}
""",
        {},
    )
    repo = build_definitions(config).get_repository_def()
    orders, logs = repo.get_job("archive__orders_job"), repo.get_job("archive__logs_job")
    assert orders.partitions_def.get_partition_keys() == ["erp_a", "erp_b"]
    assert logs.partitions_def.get_partition_keys() == ["erp_a"]
    assert {s.name for s in repo.schedule_defs} >= {"archive__orders_schedule", "archive__logs_schedule"}


@pytest.mark.slow
def test_the_cli_materializes_one_database_as_a_partition(write_config, erp_db, tmp_path):
    """`dagster asset materialize --select table_stats --partition <db>`: one database's partition,
    recorded in the instance under that partition."""
    config = write_config(
        f"backup_store: {{local_dir: {tmp_path / 'backups'}}}\n"
        f'databases:\n  - {{name: erp, dsn: "{erp_db}"}}\n  - {{name: mes, dsn: "host=127.0.0.1 port=1"}}\n'
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "OPS_PIPELINES"))}
    env.update({CONFIG_ENV_VAR: str(config), "DAGSTER_HOME": str(home)})
    dagster = Path(sys.executable).with_name("dagster")
    command = [dagster, "asset", "materialize", "--select", "table_stats", "--partition", "erp"]
    result = subprocess.run(
        [*command, "-m", "ops_pipelines.definitions"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.fetch_materializations(dg.AssetKey("table_stats"), limit=5).records
        assert [r.partition_key for r in records] == ["erp"]
    unknown = subprocess.run(
        [
            dagster,
            "asset",
            "materialize",
            "--select",
            "table_stats",
            "--partition",
            "nope",
            "-m",
            "ops_pipelines.definitions",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert unknown.returncode != 0 and "nope" in unknown.stdout + unknown.stderr


def test_a_new_capability_is_one_folder_and_one_registry_entry():
    """A capability declared outside the package (as one folder would declare it) appears with its
    asset, job, schedule and sensor, built by definitions.py and automation/ unchanged; its job runs
    the asset for one database and its sensor requests a run of that job."""
    from ops_pipelines import registry
    from ops_pipelines.capabilities.common import fleet_asset
    from ops_pipelines.capability import Capability, CapabilityJob, Fleets, Part, always

    def build(config, capability: Capability, fleets: Fleets) -> dg.Definitions:
        fleet = fleets["throwaway_probe"]

        @fleet_asset(capability, "throwaway_probe", fleet, description="A capability the registry does not ship.")
        def throwaway_probe(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
            return dg.MaterializeResult(metadata={"database": fleet.database(context.partition_key).name})

        return dg.Definitions(assets=[throwaway_probe])

    def sensors(config, jobs: tuple[CapabilityJob, ...]) -> list[dg.SensorDefinition]:
        job = jobs[0]

        @dg.sensor(name="throwaway_sensor", job_name=job.name)
        def throwaway_sensor(context: dg.SensorEvaluationContext):
            return [job.run_request(name, run_key=f"throwaway:{name}") for name in job.fleet.names]

        return [throwaway_sensor]

    throwaway = Capability(
        "throwaway", (Part(build, always("throwaway_probe")),), schedule="integrity", sensors=sensors
    )
    config = parse_config(THREE_DATABASES, {})
    shipped = build_definitions(config)
    definitions = build_definitions(config, (*registry.CAPABILITIES, throwaway))
    added = sorted(set(describe(definitions)) - set(describe(shipped)))
    everyone = "erp_prod,erp_mes,erp_food"
    assert added == [
        f"asset throwaway_probe group=throwaway kinds=postgres partitions={everyone}",
        f"job throwaway_job partitions={everyone} assets=throwaway_probe",
        f"schedule throwaway_schedule {config.schedules.integrity} {config.timezone}",
        "sensor throwaway_sensor",
    ], added
    assert set(describe(shipped)) <= set(describe(definitions))  # nothing else changed
    assert definitions.resolve_schedule_def("throwaway_schedule").job_name == "throwaway_job"

    result = definitions.resolve_job_def("throwaway_job").execute_in_process(partition_key="erp_mes")
    assert result.success
    [materialization] = result.asset_materializations_for_node("throwaway_probe")
    assert materialization.metadata["database"].value == "erp_mes"
    with dg.instance_for_test() as instance:
        requests = definitions.resolve_sensor_def("throwaway_sensor")(dg.build_sensor_context(instance=instance))
    assert [(r.job_name, r.partition_key) for r in requests] == [
        ("throwaway_job", name) for name in ("erp_prod", "erp_mes", "erp_food")
    ]


def test_every_capability_folder_is_registered_and_kept_independent():
    """A folder under capabilities/ is a capability only once the registry names it, and the
    import-linter independence contract (pyproject.toml) must list it, or it could import another."""
    import tomllib

    from ops_pipelines import capabilities, registry

    root = Path(capabilities.__file__).parent
    folders = {p.parent.name for p in root.glob("*/__init__.py")}
    registered = {c.name for c in registry.CAPABILITIES}
    assert folders == registered
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    [independence] = [c for c in pyproject["tool"]["importlinter"]["contracts"] if c["type"] == "independence"]
    assert {m.removeprefix("ops_pipelines.capabilities.") for m in independence["modules"]} == folders
