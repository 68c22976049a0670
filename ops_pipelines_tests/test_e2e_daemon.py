"""End to end with the real Dagster daemon and webserver, against a PostgreSQL-backed instance
(the repository's dagster.yaml): turn on the missing-backup sensor through the GraphQL API, as the
UI does, and watch it launch a backup that succeeds with its checks passed, then the restore test
the new backup triggers. Both processes are stopped cleanly at the end."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from ops_pipelines.resources.cluster import free_port
from ops_pipelines_tests.conftest import create_database, drop_database

REPO = Path(__file__).resolve().parents[1]
LOCATION = {"repositoryLocationName": "ops_pipelines", "repositoryName": "__repository__"}


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body["errors"]
    return body["data"]


def wait_for(what: str, probe, timeout: float, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def runs(port: int, job: str) -> list[dict]:
    data = graphql(port, """
        query Runs($job: String!) {
          runsOrError(filter: {pipelineName: $job}) { ... on Runs { results { runId status tags { key value } } } }
        }""", {"job": job})
    return data["runsOrError"]["results"]


def checks_of_latest(port: int, path: list[str]) -> dict[str, str]:
    data = graphql(port, """
        query Checks($path: [String!]!) {
          assetNodes(assetKeys: [{path: $path}]) {
            assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } }
          }
        }""", {"path": path})
    checks = data["assetNodes"][0]["assetChecksOrError"]["checks"]
    return {c["name"]: (c["executionForLatestMaterialization"] or {}).get("status") for c in checks}


@pytest.fixture
def instance_env(pg_server, erp_db, tmp_path):
    """DAGSTER_HOME with the shipped dagster.yaml, its storage in a new database, and a config
    naming the ERP copy."""
    instance_db = create_database(pg_server)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"backup_store: {{local_dir: {tmp_path / 'backups'}}}\n"
        f"databases:\n  - name: erp\n    dsn: \"{erp_db}\"\n"
    )
    server = conninfo_to_dict(pg_server)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "OPS_PIPELINES"))}
    env.update({
        "DAGSTER_HOME": str(home), "OPS_PIPELINES_CONFIG": str(config),
        "DAGSTER_PG_HOST": server.get("host", "127.0.0.1"), "DAGSTER_PG_PORT": str(server.get("port", 5432)),
        "DAGSTER_PG_USER": server.get("user", "postgres"), "DAGSTER_PG_PASSWORD": server.get("password", ""),
        "DAGSTER_PG_DB": instance_db,
    })
    yield env
    drop_database(pg_server, instance_db)


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"{process.args[2]} did not stop within 60 s of SIGINT")


@pytest.mark.slow
def test_daemon_runs_the_missing_backup_sensor_turned_on_through_graphql(instance_env, tmp_path):
    bin_dir = Path(sys.executable).parent
    port = free_port()
    webserver = start([bin_dir / "dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                      instance_env, tmp_path / "webserver.log")
    daemon = start([bin_dir / "dagster-daemon", "run", "-w", "workspace.yaml"], instance_env, tmp_path / "daemon.log")
    try:
        def location_loaded():
            try:
                data = graphql(port, "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }")
            except OSError:
                return None
            entries = data["workspaceOrError"]["locationEntries"]
            return entries if entries and entries[0]["loadStatus"] == "LOADED" else None

        wait_for("the webserver to load the code location", location_loaded, 120)
        started = graphql(port, """
            mutation Start($selector: SensorSelector!) {
              startSensor(sensorSelector: $selector) {
                __typename ... on Sensor { sensorState { status } } ... on PythonError { message }
              }
            }""", {"selector": {**LOCATION, "sensorName": "missing_backup_sensor"}})["startSensor"]
        assert started["__typename"] == "Sensor" and started["sensorState"]["status"] == "RUNNING", started

        backup_run = wait_for("a successful backup run launched by the sensor", lambda: next(
            (r for r in runs(port, "backup_erp") if r["status"] in {"SUCCESS", "FAILURE", "CANCELED"}), None), 240)
        assert backup_run["status"] == "SUCCESS", (tmp_path / "daemon.log").read_text()[-3000:]
        tags = {t["key"]: t["value"] for t in backup_run["tags"]}
        assert tags["dagster/sensor_name"] == "missing_backup_sensor"
        assert tags["dagster/run_key"].startswith("missing-backup:erp:none")
        checks = checks_of_latest(port, ["erp", "backup"])
        assert {checks[name] for name in ("backup_fresh", "backup_checksum", "backup_readable", "backup_size_sane")} == {"SUCCEEDED"}

        restore_run = wait_for("the restore test the new backup triggers", lambda: next(
            (r for r in runs(port, "restore_test_erp") if r["status"] in {"SUCCESS", "FAILURE", "CANCELED"}), None), 240)
        assert restore_run["status"] == "SUCCESS"
        assert checks_of_latest(port, ["erp", "restore_test"])["restore_verified"] == "SUCCEEDED"
        assert len(runs(port, "backup_erp")) == 1  # one gap, one run
    finally:
        codes = (stop(daemon), stop(webserver))
    assert codes == (0, 0) or all(code in (0, -signal.SIGINT, 130) for code in codes), codes
