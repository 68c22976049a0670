"""End to end with the real Dagster daemon and webserver, against a PostgreSQL-backed instance
(the repository's dagster.yaml): turn on the missing-backup sensor through the GraphQL API, as the
UI does, and watch it launch a backup that succeeds with its checks passed, then the restore test
the new backup triggers; a failed run reaches a real webhook receiver once; the metrics textfile
follows the runs. Both processes are stopped cleanly at the end."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from ops_pipelines.adapters.cluster import free_port
from ops_pipelines.adapters.postgres import with_dbname
from ops_pipelines_tests.conftest import create_database, drop_database
from ops_pipelines_tests.dagster_ui import LOCATION, graphql, launch_run, start, wait_for, wait_until_loaded

REPO = Path(__file__).resolve().parents[1]


def runs(port: int, database: str, capability: str) -> list[dict]:
    """Runs of one capability (its job's tag) of one database (the run's partition), however launched."""
    tags = [
        {"key": "dagster/partition", "value": database},
        {"key": "ops_pipelines/capability", "value": capability},
    ]
    data = graphql(
        port,
        """
        query Runs($tags: [ExecutionTag!]) {
          runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId status jobName tags { key value } } } }
        }""",
        {"tags": tags},
    )
    return data["runsOrError"]["results"]


def checks_of_latest(port: int, asset: str, database: str) -> dict[str, str]:
    """The status of the newest execution of each check of `asset` on one database (partition)."""
    data = graphql(
        port,
        """
        query Checks($path: [String!]!) {
          assetNodes(assetKeys: [{path: $path}]) { assetChecksOrError { ... on AssetChecks { checks { name } } } }
        }""",
        {"path": [asset]},
    )
    names = [c["name"] for c in data["assetNodes"][0]["assetChecksOrError"]["checks"]]
    statuses = {}
    for name in names:
        executions = graphql(
            port,
            """
            query E($key: AssetKeyInput!, $name: String!, $partition: String) {
              assetCheckExecutions(assetKey: $key, checkName: $name, partition: $partition, limit: 1) { status }
            }""",
            {"key": {"path": [asset]}, "name": name, "partition": database},
        )["assetCheckExecutions"]
        statuses[name] = executions[0]["status"] if executions else None
    return statuses


@pytest.fixture(scope="module")
def receiver():
    from ops_pipelines_tests.webhook_receiver import WebhookReceiver

    webhook = WebhookReceiver()
    yield webhook
    webhook.close()


@pytest.fixture(scope="module")
def smtp():
    from ops_pipelines_tests.test_email import SmtpServer

    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def alertmanager_url(tmp_path_factory):
    """A real Alertmanager when installed (scripts/test.sh installs it as root); None otherwise."""
    from ops_pipelines_tests.test_alertmanager import BINARY, start_alertmanager

    if BINARY is None:
        yield None
        return
    process, url = start_alertmanager(tmp_path_factory.mktemp("alertmanager"))
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def instance_env(pg_server, erp_template, tmp_path_factory, receiver, smtp, alertmanager_url):
    """DAGSTER_HOME with the shipped dagster.yaml, its storage in a new database, and a config
    naming two copies of the ERP database, with alerts to `receiver` and a metrics textfile."""
    tmp_path = tmp_path_factory.mktemp("e2e")
    instance_db = create_database(pg_server)
    erp_dbs = [create_database(pg_server, template=erp_template) for _ in range(2)]
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"backup_store: {{local_dir: {tmp_path / 'backups'}}}\n"
        f"alerts: {{webhook_url: '{receiver.url}', format: generic, ui_base_url: 'http://ops.example:3000',"
        " every: 5s, email_to: [dba@example.com]"  # alerts looked for every 5 s: the test waits for ticks
        + (f", alertmanager_url: '{alertmanager_url}'" if alertmanager_url else "")
        + "}\n"
        f"email: {{host: 127.0.0.1, port: {smtp.port}, sender: ops@example.com, security: none}}\n"
        f"metrics: {{textfile_path: {tmp_path / 'textfile' / 'ops.prom'}}}\n"
        "databases:\n"
        + "".join(
            f'  - name: {name}\n    dsn: "{with_dbname(pg_server, db)}"\n'
            for name, db in zip(("erp", "mes"), erp_dbs, strict=True)
        )
    )
    server = conninfo_to_dict(pg_server)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "OPS_PIPELINES"))}
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "OPS_PIPELINES_CONFIG": str(config),
            "DAGSTER_PG_HOST": server.get("host", "127.0.0.1"),
            "DAGSTER_PG_PORT": str(server.get("port", 5432)),
            "DAGSTER_PG_USER": server.get("user", "postgres"),
            "DAGSTER_PG_PASSWORD": server.get("password", ""),
            "DAGSTER_PG_DB": instance_db,
        }
    )
    yield env, tmp_path
    for name in [instance_db, *erp_dbs]:
        drop_database(pg_server, name)


@pytest.fixture(scope="module")
def dagster_services(instance_env):
    """The real dagster-webserver and dagster-daemon on that instance; yields the webserver port."""
    env, tmp_path = instance_env
    bin_dir = Path(sys.executable).parent
    port = free_port()
    webserver = start(
        [bin_dir / "dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        env,
        REPO,
        tmp_path / "webserver.log",
    )
    daemon = start([bin_dir / "dagster-daemon", "run", "-w", "workspace.yaml"], env, REPO, tmp_path / "daemon.log")
    try:
        wait_until_loaded(port, webserver, 120)
        yield port, tmp_path
    finally:
        codes = (stop(daemon), stop(webserver))
    assert all(code in (0, -signal.SIGINT, 130) for code in codes), codes


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"{process.args[2]} did not stop within 60 s of SIGINT")


def finished(port: int, database: str, capability: str, count: int = 1):
    done = [r for r in runs(port, database, capability) if r["status"] in {"SUCCESS", "FAILURE", "CANCELED"}]
    return done if len(done) >= count else None


@pytest.mark.slow
def test_daemon_runs_the_missing_backup_sensor_turned_on_through_graphql(dagster_services):
    port, tmp_path = dagster_services
    started = graphql(
        port,
        """
        mutation Start($selector: SensorSelector!) {
          startSensor(sensorSelector: $selector) {
            __typename ... on Sensor { sensorState { status } } ... on PythonError { message }
          }
        }""",
        {"selector": {**LOCATION, "sensorName": "missing_backup_sensor"}},
    )["startSensor"]
    assert started["__typename"] == "Sensor" and started["sensorState"]["status"] == "RUNNING", started

    for db in ("erp", "mes"):  # both databases lack a backup: one run each
        backup_run = wait_for(
            f"the backup run of {db} launched by the sensor", lambda db=db: finished(port, db, "backup"), 300
        )[0]
        assert backup_run["status"] == "SUCCESS", (tmp_path / "daemon.log").read_text()[-3000:]
        assert backup_run["jobName"] == "backup_job"
        tags = {t["key"]: t["value"] for t in backup_run["tags"]}
        assert tags["dagster/sensor_name"] == "missing_backup_sensor"
        assert tags["dagster/run_key"] == f"missing-backup:{db}:none"
        checks = checks_of_latest(port, "backup", db)
        assert {
            checks[name] for name in ("backup_fresh", "backup_checksum", "backup_readable", "backup_size_sane")
        } == {"SUCCEEDED"}

    restore_run = wait_for(
        "the restore test the new backup triggers", lambda: finished(port, "erp", "restore_test"), 300
    )[0]
    assert restore_run["status"] == "SUCCESS"
    assert checks_of_latest(port, "restore_test", "erp")["restore_verified"] == "SUCCEEDED"
    assert len(runs(port, "erp", "backup")) == 1  # one gap, one run


@pytest.mark.slow
def test_runs_of_one_database_never_overlap_and_databases_run_in_parallel(dagster_services):
    """Launched as the UI launches a partition: the run queue's limit on `dagster/partition` holds the
    second run of a database until the first ends, while the other database's run proceeds."""
    port, _ = dagster_services
    launched = [(db, launch_run(port, "vacuum_job", db)) for db in ("erp", "mes", "erp", "mes")]

    def timings():
        spans = []
        for db, run_id in launched:
            run = graphql(
                port,
                """
                query R($id: ID!) {
                  runOrError(runId: $id) {
                    ... on Run { status stats { ... on RunStatsSnapshot { launchTime endTime } } }
                  }
                }""",
                {"id": run_id},
            )["runOrError"]
            if run["status"] not in {"SUCCESS", "FAILURE", "CANCELED"}:
                return None
            # From the queue's hand-over to the launcher to the end: the span the queue holds the
            # database's slot for (steps run in-process now, so a run's own work is a second or two).
            spans.append((db, run["status"], run["stats"]["launchTime"], run["stats"]["endTime"]))
        return spans

    spans = wait_for("the four vacuum runs to finish", timings, 300)
    assert {status for _, status, _, _ in spans} == {"SUCCESS"}

    def overlap(a, b):
        return a[2] < b[3] and b[2] < a[3]

    same_db = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1 :] if a[0] == b[0]]
    other_db = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1 :] if a[0] != b[0]]
    assert not any(overlap(a, b) for a, b in same_db), spans  # one run per partition key at a time
    assert any(overlap(a, b) for a, b in other_db), spans  # different databases in parallel


@pytest.mark.slow
def test_a_failed_run_posts_one_alert_and_the_textfile_follows_the_runs(
    dagster_services, receiver, smtp, alertmanager_url
):
    port, tmp_path = dagster_services

    def alert_sensor_ticked():
        data = graphql(
            port,
            """
            query S($selector: SensorSelector!) {
              sensorOrError(sensorSelector: $selector) {
                ... on Sensor { sensorState { ticks(limit: 1) { status timestamp } } }
              }
            }""",
            {"selector": {**LOCATION, "sensorName": "run_failure_alert_sensor"}},
        )
        return data["sensorOrError"]["sensorState"]["ticks"]

    wait_for("the first tick of the run-failure alert sensor", alert_sensor_ticked, 120)
    missing = {"ops": {"restore_test": {"config": {"backup": "20990101T000000Z"}}}}
    run_id = launch_run(port, "restore_test_job", "mes", missing)

    def alerts_for_run():
        return [p for p in receiver.posts if p["kind"] == "run_failure" and p["run_id"] == run_id]

    alert = wait_for("the alert of the failed run", alerts_for_run, 180)[0]
    assert (alert["database"], alert["asset"], alert["job"]) == ("mes", "restore_test", "restore_test_job")
    assert "no backup 20990101T000000Z of mes" in alert["cause"]
    assert alert["run_url"] == f"http://ops.example:3000/runs/{run_id}"
    # A tick is recorded when it starts, so the newest one now is the tick that posted (or a later one):
    # once a tick newer than it has finished, the alert was not posted again.
    posted_by = alert_sensor_ticked()[0]["timestamp"]
    wait_for(
        "a later finished tick of the alert sensor",
        lambda: [t for t in alert_sensor_ticked() if t["timestamp"] > posted_by and t["status"] != "STARTED"],
        120,
    )
    assert len(alerts_for_run()) == 1
    # the same alert by e-mail, and (when installed) in Alertmanager, sent by the real daemon's ticks
    mails = wait_for(
        "the alert mail",
        lambda: [m for m in smtp.inbox.messages if run_id in m.get_body(("plain",)).get_content()],
        120,
    )
    assert str(mails[0]["Subject"]).strip().startswith("[ops_pipelines] FAILED mes/restore_test: run failed")
    if alertmanager_url is not None:
        from ops_pipelines_tests.test_alertmanager import active_alerts

        fired = wait_for(
            "the alert in Alertmanager",
            lambda: [a for a in active_alerts(alertmanager_url) if a["labels"].get("alertname") == "run_failure"],
            120,
        )
        assert fired[0]["labels"]["database"] == "mes" and run_id in fired[0]["annotations"]["run_url"]

    textfile = tmp_path / "textfile" / "ops.prom"
    text = wait_for("the metrics textfile", lambda: textfile.exists() and textfile.read_text(), 120)
    assert 'ops_pipelines_backup_last_bytes{database="erp"}' in text


def test_the_daemon_records_the_health_probe_without_a_run(dagster_services):
    """health_probe_sensor, ticked by the real daemon, records every check of `health` for each
    database (its first probe) through the event log: the UI shows them, and no run was launched."""
    port, tmp_path = dagster_services

    def recorded(database: str):
        statuses = checks_of_latest(port, "health", database)
        return statuses if all(statuses.values()) else None

    for database in ("erp", "mes"):
        statuses = wait_for(f"the health checks of {database}", lambda d=database: recorded(d), 120)
        assert statuses["reachable"] == "SUCCEEDED" and len(statuses) == 11, statuses
    assert runs(port, "erp", "health") == [] and runs(port, "mes", "health") == []
    health = tmp_path / "textfile" / "ops_pipelines_health.prom"
    text = wait_for("the health textfile", lambda: health.exists() and health.read_text(), 60)
    assert 'ops_pipelines_health_check_state{database="erp",check="reachable"} 0' in text
