"""The shipped instance configs, checked against Dagster's own config schema (and the main one
used for real), plus the files the README points production users to."""

import importlib
import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

# Private: Dagster's own instance-config schema, to validate the shipped dagster.*.yaml; no public API does.
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config  # noqa: TID251
from psycopg.conninfo import conninfo_to_dict

from ops_pipelines_tests.conftest import create_database, drop_database

REPO = Path(__file__).resolve().parents[1]
INSTANCE_CONFIGS = ["dagster.yaml", "deploy/docker/dagster.docker.yaml", "deploy/k8s/dagster.k8s.yaml"]


@pytest.fixture
def pg_env(monkeypatch, pg_server):
    server = conninfo_to_dict(pg_server)
    name = create_database(pg_server)
    for key, value in {
        "DAGSTER_PG_HOST": server.get("host", "127.0.0.1"),
        "DAGSTER_PG_PORT": str(server.get("port", 5432)),
        "DAGSTER_PG_USER": server.get("user", "postgres"),
        "DAGSTER_PG_PASSWORD": server.get("password", ""),
        "DAGSTER_PG_DB": name,
    }.items():
        monkeypatch.setenv(key, value)
    yield
    drop_database(pg_server, name)


ONE_PER_DATABASE = {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}


@pytest.mark.parametrize("path", INSTANCE_CONFIGS)
def test_instance_config_matches_dagsters_schema(path, tmp_path, pg_env):
    shutil.copy(REPO / path, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # raises on any schema error
    for section in ("run_launcher", "run_coordinator"):
        if section in config:
            # Dagster itself maps the documented dagster.core.* paths to dagster._core.*
            module = importlib.import_module(config[section]["module"].replace("dagster.core.", "dagster._core."))
            cls = getattr(module, config[section]["class"])
            result = validate_config(cls.config_type(), config[section].get("config", {}))
            assert result.success, [e.message for e in result.errors]
    assert config["telemetry"] == {"enabled": False}
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False
    # one run per database (partition) at a time
    assert config["concurrency"]["runs"]["tag_concurrency_limits"] == [ONE_PER_DATABASE]


def test_the_main_instance_config_runs_on_postgres(tmp_path, pg_env):
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert [dict(limit) for limit in limits] == [ONE_PER_DATABASE]


def test_compose_and_helm_values_are_wired_to_the_shipped_files():
    compose = yaml.safe_load((REPO / "deploy/docker/docker-compose.yaml").read_text())
    assert {"dagster-postgres", "code", "webserver", "daemon"} <= set(compose["services"])
    assert compose["services"]["code"]["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert (REPO / compose["services"]["code"]["build"]["context"].replace("../..", ".")).exists()
    values = yaml.safe_load((REPO / "deploy/k8s/values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagster-user-deployments"]["deployments"][0]["dagsterApiGrpcArgs"] == [
        "-m",
        "ops_pipelines.definitions",
    ]
    for unit in ("dagster-code-server", "dagster-webserver", "dagster-daemon"):
        text = (REPO / f"deploy/systemd/{unit}.service").read_text()
        assert "EnvironmentFile=/etc/ops_pipelines/ops_pipelines.env" in text and "ExecStart=" in text
