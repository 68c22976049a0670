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
    """Every asset key with its group, kinds and pool, every job, schedule and sensor: one per line."""
    graph = definitions.resolve_asset_graph()
    lines = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        pool = definitions.resolve_assets_def(key).op.pool or "-"
        lines.append(
            f"asset {key.to_user_string()} group={node.group_name} kinds={','.join(sorted(node.kinds))} pool={pool}"
        )
    for check_key in sorted(graph.asset_check_keys, key=str):
        lines.append(f"check {check_key.asset_key.to_user_string()}:{check_key.name}")
    repo = definitions.get_repository_def()
    lines += [f"job {j.name}" for j in sorted(repo.get_all_jobs(), key=lambda j: j.name) if not j.name.startswith("__")]
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


def test_every_database_gets_its_own_prefix_and_group():
    definitions = build_definitions(parse_config(THREE_DATABASES, {}))
    graph = definitions.resolve_asset_graph()
    for name in ("erp_prod", "erp_mes", "erp_food"):
        key = dg.AssetKey([name, "table_stats"])
        assert graph.get(key).group_name == name
        assert graph.get(key).description


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
    assert f'{path}: databases[1].name: "erp-mes" is not a valid asset-key segment' in result.stdout + result.stderr


def test_each_capability_builds_exactly_the_assets_the_registry_declares():
    """The registry is the one place that says which assets a capability has for a database: its
    factories must build those, and nothing else, with the pool its `exclusive` says."""
    from ops_pipelines import registry
    from ops_pipelines.config import Schedules

    minimal = parse_config("backup_store: {local_dir: /tmp/x}\ndatabases: [{name: bare, dsn: 'host=db'}]\n", {})
    for config in (parse_config(THREE_DATABASES, {}), minimal):
        for db in config.databases:
            for capability in registry.CAPABILITIES:
                declared = {dg.AssetKey([db.name, name]) for name in capability.assets(config, db)}
                built = capability.build(config, db) if declared else dg.Definitions()
                keys = {key for assets_def in built.assets or [] for key in assets_def.keys}
                assert keys == declared, (capability.name, db.name)
                for key in keys:
                    pool = built.resolve_assets_def(key).op.pool
                    assert pool == (f"db_{db.name}" if capability.exclusive else None), (capability.name, key)
    assert {c.schedule for c in registry.CAPABILITIES} <= {None, registry.FIRST_WEEK, *Schedules.model_fields}
    bare = {c.name for c in registry.present(minimal, minimal.databases[0])}
    assert bare == {"table_stats", "backup", "restore_test", "vacuum", "reindex", "capacity"}  # no s3, rules, window
