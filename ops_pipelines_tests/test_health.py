"""The health probe against a real throwaway cluster (prepared transactions on, a replication slot
possible): each planted condition fails its exact check with the object named; the sensor records
only state changes, the alert sensor posts a failure once and its resolution once."""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from ops_pipelines.adapters.cluster import LocalCluster, free_port
from ops_pipelines.adapters.postgres import with_dbname
from ops_pipelines.config import parse_config
from ops_pipelines.core.health import CHECKS, SERVER_CHECKS, probe
from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines_tests.dagster_ui import wait_for
from ops_pipelines_tests.helpers import SensorTicks

REPO = Path(__file__).resolve().parents[1]

# thresholds a test can cross in a second or two
QUICK = (
    "health: {idle_in_transaction_warn: 1s, idle_in_transaction_error: 1h, xmin_held_warn: 1h, xmin_held_error: 2h,"
    " blocked_warn: 1s, blocked_error: 1h, prepared_xact_warn: 1s, prepared_xact_error: 1h}"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    server = LocalCluster.temporary(
        prefix="ops_test_health_", settings={"max_prepared_transactions": "5", "wal_level": "replica"}
    )
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def database(cluster: LocalCluster) -> Iterator[str]:
    name = f"erp_{time.monotonic_ns()}"
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_dbname(cluster.dsn(), name)
    with psycopg.connect(with_dbname(cluster.dsn(), name), autocommit=True) as conn:
        for gid in conn.execute("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()").fetchall():
            conn.execute(f"ROLLBACK PREPARED '{gid[0]}'")  # a name of our own
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        for slot in conn.execute("SELECT slot_name FROM pg_replication_slots").fetchall():
            conn.execute("SELECT pg_drop_replication_slot(%s)", slot)
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def config_for(tmp_path, dsn: str, extra: str = QUICK, top: str = ""):
    text = (
        f"timezone: UTC\n{top}backup_store: {{local_dir: {tmp_path / 'store'}}}\n"
        f"databases:\n  - name: erp\n    dsn: '{dsn}'\n    {extra}\n"
    )
    (tmp_path / "store").mkdir(exist_ok=True)
    return parse_config(text, {})


def failing(result) -> dict[str, str]:
    return {name: v.description for name, v in result.verdicts.items() if v is not None and not v.passed}


def test_a_quiet_database_passes_every_check(tmp_path, database):
    db = config_for(tmp_path, database).databases[0]
    first = probe(db, tmp_path)
    assert set(first.verdicts) == set(CHECKS)
    assert failing(first) == {}, failing(first)
    again = probe(db, tmp_path, previous=first.counters)
    assert "came from the cache" in again.verdicts["cache_hit"].description or "no blocks" in (
        again.verdicts["cache_hit"].description
    )
    assert again.figures["connections_ratio"] > 0 and again.figures["xid_age"] >= 0


def test_planted_conditions_fail_their_checks_with_the_object_named(tmp_path, database):
    db = config_for(tmp_path, database).databases[0]
    setup = psycopg.connect(database, autocommit=True)
    setup.execute("CREATE TABLE serial_98 (id serial PRIMARY KEY)")
    setup.execute("SELECT setval('serial_98_id_seq', (0.98 * 2147483647)::bigint)")
    setup.execute("CREATE TABLE ident_max (id int GENERATED ALWAYS AS IDENTITY, v int)")
    setup.execute("SELECT setval(pg_get_serial_sequence('ident_max', 'id'), 2147483000)")
    setup.execute("CREATE TABLE stock (id int PRIMARY KEY, qty int)")
    setup.execute("INSERT INTO stock VALUES (1, 10)")
    setup.execute("SELECT pg_create_physical_replication_slot('ops_test_slot', true)")

    holder = psycopg.connect(database, application_name="erp-batch")
    holder.execute("UPDATE stock SET qty = 9 WHERE id = 1")  # idle in transaction, holding the row lock
    holder_pid = holder.info.backend_pid
    waiter = psycopg.connect(database, autocommit=True, application_name="erp-ui")
    waiter_pid = waiter.info.backend_pid
    blocked = threading.Thread(target=lambda: waiter.execute("UPDATE stock SET qty = 8 WHERE id = 1"), daemon=True)
    blocked.start()
    preparer = psycopg.connect(database)
    preparer.execute("INSERT INTO stock VALUES (2, 1)")
    preparer.execute("PREPARE TRANSACTION 'ops_test_px'")
    try:
        expected = {"sequence_headroom", "long_transactions", "blocked_sessions", "prepared_xacts", "replication"}

        def all_planted() -> dict | None:
            found = failing(probe(db, tmp_path))
            return found if expected <= set(found) else None

        found = wait_for("every planted condition", all_planted, 30)
        assert set(found) == expected, found
        assert "public.serial_98.id at 2,104,533,974 of 2,147,483,647 (98.0%, integer)" in found["sequence_headroom"]
        assert "public.ident_max.id at 2,147,483,000" in found["sequence_headroom"]
        assert "idle in transaction for" in found["long_transactions"]
        assert f"pid {holder_pid} (postgres, erp-batch)" in found["long_transactions"]
        assert "UPDATE stock SET qty = 9 WHERE id = 1" in found["long_transactions"]
        assert f"pid {waiter_pid} (postgres, erp-ui) waits" in found["blocked_sessions"]
        assert f"blocked by {holder_pid} (postgres, erp-batch, idle in transaction)" in found["blocked_sessions"]
        assert "'ops_test_px' (owner postgres)" in found["prepared_xacts"]
        assert "slot ops_test_slot (inactive)" in found["replication"]
        result = probe(db, tmp_path)
        assert not result.verdicts["sequence_headroom"].warning_only  # 98 % and 99.99 %: errors
        assert result.verdicts["prepared_xacts"].warning_only  # past the warning, far from the error
    finally:
        holder.rollback()
        blocked.join(10)
        for conn in (holder, waiter, preparer, setup):
            conn.close()


def test_terminate_idle_in_transaction_after_ends_the_session_and_names_it(tmp_path, database):
    db = config_for(tmp_path, database, QUICK.replace("}", ", terminate_idle_in_transaction_after: 1s}")).databases[0]
    idle = psycopg.connect(database, application_name="forgotten-report")
    idle.execute("SELECT 1")  # a transaction left open
    pid = idle.info.backend_pid
    messages: list[str] = []
    result = wait_for(
        "the idle session ended", lambda: (r := probe(db, tmp_path, log=messages.append)).terminated and r, 30
    )
    assert f"pid {pid} (postgres, forgotten-report)" in result.terminated[0]
    assert messages and f"terminated pid {pid}" in messages[0]
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] == 0
    idle.close()


def test_a_stopped_server_fails_reachable_within_the_connect_timeout(tmp_path):
    dsn = f"host=127.0.0.1 port={free_port()} user=postgres dbname=erp"  # nothing listens: a stopped server
    db = config_for(tmp_path, dsn, "timeouts: {connect: 2s}").databases[0]
    started = time.monotonic()
    result = probe(db, tmp_path)
    assert time.monotonic() - started < 5
    assert not result.verdicts["reachable"].passed and "not reachable" in result.verdicts["reachable"].description
    assert all(result.verdicts[name] is None for name in SERVER_CHECKS)  # not judged: their last state stands
    assert result.verdicts["backup_volume"].passed  # the local disk is still watched


def test_the_sensor_records_changes_only_and_alerts_once_then_resolves(tmp_path, database, webhook):
    top = (
        f"alerts: {{webhook_url: '{webhook.url}', format: generic}}\nmetrics: {{textfile_path: {tmp_path}/ops.prom}}\n"
    )
    config = config_for(tmp_path, database, top=top)
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    ticks = SensorTicks(defs, instance)
    tick, cursors = ticks.tick, ticks.cursors

    def evaluations(check: str) -> int:
        key = dg.AssetCheckKey(dg.AssetKey("health"), check)
        return len(instance.event_log_storage.get_asset_check_execution_history(key, limit=100))

    tick("check_failure_alert_sensor")  # the alert sensor's first tick marks the present
    assert "recorded 11 check results" in tick("health_probe_sensor")  # the first probe records every check
    assert "recorded 0 check results" in tick("health_probe_sensor")  # nothing changed: nothing recorded
    assert evaluations("prepared_xacts") == 1

    preparer = psycopg.connect(database)
    preparer.execute("SELECT 1")
    preparer.execute("PREPARE TRANSACTION 'ops_test_alert'")
    wait_for("the prepared transaction to age", lambda: "prepared_xacts" in tick("health_probe_sensor"), 30)
    tick("check_failure_alert_sensor")
    assert [(p["kind"], p["check"], p["severity"]) for p in webhook.posts] == [
        ("check_failure", "prepared_xacts", "warning")
    ]
    assert "'ops_test_alert'" in webhook.posts[0]["cause"] and webhook.posts[0]["database"] == "erp"
    tick("health_probe_sensor")  # still failing, unchanged: not recorded, not alerted again
    tick("check_failure_alert_sensor")
    assert len(webhook.posts) == 1 and evaluations("prepared_xacts") == 2

    textfile = (tmp_path / "ops_pipelines_health.prom").read_text()
    assert 'ops_pipelines_health_check_state{database="erp",check="prepared_xacts"} 1' in textfile
    assert 'ops_pipelines_health_connections_ratio{database="erp"}' in textfile

    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("COMMIT PREPARED 'ops_test_alert'")
    preparer.close()
    assert "failing: none" in tick("health_probe_sensor")
    tick("check_failure_alert_sensor")
    assert [(p["kind"], p["check"]) for p in webhook.posts] == [
        ("check_failure", "prepared_xacts"),
        ("check_resolved", "prepared_xacts"),
    ]
    assert webhook.posts[1]["title"] == "erp/health: check prepared_xacts resolved"

    # materializing `health` runs the same probe once, as a run
    run = capability_job(defs, config, "erp", "health").execute_in_process(partition_key="erp", instance=instance)
    assert run.success
    assert {c.check_name for c in run.get_asset_check_evaluations()} == set(CHECKS)
    assert json.loads(cursors["health_probe_sensor"] or "{}")["recorded"]["erp/reachable"][0] == "passed"


def test_a_sensor_preview_probes_but_writes_nothing(tmp_path, database):
    """`dagster sensor preview` (and the UI's "Test sensor") evaluate the sensor outside the daemon:
    it probes and says what it would record, but no check result reaches the instance and no
    textfile is written (m7: a preview recorded 31 results)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")  # an empty dagster.yaml: the instance keeps its storage in sqlite files here
    config = tmp_path / "config.yaml"
    config.write_text(
        f"timezone: UTC\nmetrics: {{textfile_path: {tmp_path}/ops.prom}}\n"
        f"backup_store: {{local_dir: {tmp_path / 'store'}}}\ndatabases:\n  - name: erp\n    dsn: '{database}'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "OPS_PIPELINES"))}
    env.update({"DAGSTER_HOME": str(home), "OPS_PIPELINES_CONFIG": str(config)})
    dagster = Path(sys.executable).parent / "dagster"
    command = [dagster, "sensor", "preview", "health_probe_sensor", "-w", "workspace.yaml"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    with dg.DagsterInstance.local_temp(tempdir=str(home)) as instance:
        for check in CHECKS:
            key = dg.AssetCheckKey(dg.AssetKey("health"), check)
            assert instance.event_log_storage.get_asset_check_execution_history(key, limit=10) == [], check
    assert not (tmp_path / "ops_pipelines_health.prom").exists()
    assert "dry run: probed 1 databases" in done.stdout and "would record 11 check results" in done.stdout, done.stdout
    assert "wrote nothing" in done.stdout


# ---------------------------------------------------------------------------- integrity (amcheck)


def test_integrity_without_amcheck_says_how_to_install_it(tmp_path, database):
    config = config_for(tmp_path, database)
    defs = build_definitions(config)
    run = capability_job(defs, config, "erp", "integrity").execute_in_process(
        partition_key="erp", instance=dg.DagsterInstance.ephemeral()
    )
    [check] = run.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "CREATE EXTENSION amcheck" in (check.description or "")


def test_a_corrupted_index_fails_amcheck_naming_it(tmp_path, cluster, database):
    config = config_for(tmp_path, database, "integrity: {heap: true, index_timeout: 1 min}")
    defs = build_definitions(config)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION amcheck")
        conn.execute("CREATE TABLE lots (id int PRIMARY KEY, code text NOT NULL)")
        conn.execute("CREATE INDEX lots_code ON lots (code)")
        conn.execute("INSERT INTO lots SELECT g, 'LOT-' || lpad(g::text, 8, '0') FROM generate_series(1, 20000) AS g")
        conn.execute("CHECKPOINT")
        path = conn.execute("SELECT current_setting('data_directory') || '/' || pg_relation_filepath('lots_code')")
        index_file = path.fetchone()[0]
    job = capability_job(defs, config, "erp", "integrity")
    clean = job.execute_in_process(partition_key="erp", instance=dg.DagsterInstance.ephemeral())
    [check] = clean.get_asset_check_evaluations()
    assert check.passed and "no corruption" in (check.description or ""), check.description

    cluster.stop()  # a throwaway cluster: write over a leaf page of one index while the server is down
    with open(index_file, "r+b") as handle:
        handle.seek(8192 + 1024)
        handle.write(bytes(range(255, 0, -1)) * 16)
    cluster.start()
    broken = job.execute_in_process(partition_key="erp", instance=dg.DagsterInstance.ephemeral())
    [check] = broken.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "public.lots_code (index)" in (check.description or ""), check.description
    assert "public.lots_pkey" not in (check.description or "")  # the other index is sound


def test_the_weekly_report_shows_each_health_failure_from_start_to_end(tmp_path, database):
    config = config_for(tmp_path, database, top=f"reports: {{dir: {tmp_path / 'reports'}}}\n")
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    ticks = SensorTicks(defs, instance)

    def tick() -> str:
        return ticks.tick("health_probe_sensor")

    tick()
    preparer = psycopg.connect(database)
    preparer.execute("SELECT 1")
    preparer.execute("PREPARE TRANSACTION 'ops_test_report'")
    wait_for(
        "the prepared transaction to fail its check",
        lambda: tick() and _failing(ticks.cursors["health_probe_sensor"], "prepared_xacts"),
        30,
    )
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("COMMIT PREPARED 'ops_test_report'")
    preparer.close()
    tick()
    assert defs.resolve_job_def("maintenance_report_job").execute_in_process(instance=instance).success
    report = instance.get_latest_materialization_event(dg.AssetKey("maintenance_report")).asset_materialization
    markdown = report.metadata["report"].value
    health = markdown.split("### Health this week", 1)[1].split("###", 1)[0]
    [row] = [line for line in health.splitlines() if line.startswith("| prepared_xacts")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "warning" and cells[3] != "still failing" and "'ops_test_report'" in cells[4], cells
    assert "prepared_xacts" not in markdown.split("### Health this week", 1)[0]  # not in the failed-check list


def _failing(cursor: str | None, check: str) -> bool:
    return json.loads(cursor or "{}").get("recorded", {}).get(f"erp/{check}", ["passed"])[0] != "passed"


def test_a_role_without_pg_monitor_gets_causes_not_a_crash(tmp_path, cluster, database):
    """A plain login role: what it cannot read says so in one line; the other checks go on."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS ops_probe_plain")
        conn.execute("CREATE ROLE ops_probe_plain LOGIN")
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY)")  # its sequence: not the role's to read
    other = psycopg.connect(database)  # another role's session, invisible to a plain role
    other.execute("SELECT 1")
    try:
        plain = database.replace("user=postgres", "user=ops_probe_plain")
        assert plain != database
        result = probe(config_for(tmp_path, plain).databases[0], tmp_path)
        assert result.verdicts["reachable"].passed and result.verdicts["connections"].passed
        sequences = result.verdicts["sequence_headroom"]
        assert not sequences.passed and sequences.warning_only
        assert "not readable by this role: public.orders_id_seq" in sequences.description
        # m6: blind is not healthy: another role's session may be idling in a transaction
        for check in ("long_transactions", "blocked_sessions"):
            verdict = result.verdicts[check]
            assert not verdict.passed and verdict.warning_only, (check, verdict)
            assert "cannot see 1 sessions of other roles (grant pg_monitor)" in verdict.description
        assert all(v is not None for v in result.verdicts.values())
    finally:
        other.close()
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("DROP TABLE orders")
            conn.execute("DROP ROLE ops_probe_plain")


def test_a_role_that_may_not_run_amcheck_gets_one_warning_not_corruption(tmp_path, cluster, database):
    """M6: without EXECUTE on amcheck's functions, every relation failed as "corrupt" (ERROR)."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        conn.execute("DROP ROLE IF EXISTS ops_amcheck_plain")
        conn.execute("CREATE ROLE ops_amcheck_plain LOGIN")
        conn.execute("CREATE TABLE lots (id int PRIMARY KEY)")
    try:
        plain = database.replace("user=postgres", "user=ops_amcheck_plain")
        config = config_for(tmp_path, plain, "integrity: {heap: true}")
        defs = build_definitions(config)
        run = capability_job(defs, config, "erp", "integrity").execute_in_process(
            partition_key="erp", instance=dg.DagsterInstance.ephemeral()
        )
        [check] = run.get_asset_check_evaluations()
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert (check.description or "").startswith(
            "not checked: role ops_amcheck_plain may not execute bt_index_check / verify_heapam (GRANT EXECUTE ON "
            "FUNCTION public.bt_index_check(regclass) TO ops_amcheck_plain;"
        ), check.description
    finally:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("DROP TABLE lots")
            conn.execute("DROP ROLE ops_amcheck_plain")


def test_findings_name_each_relation_once():
    """m5: 7 findings in 3 relations were described as "7 relations" and only 5 named."""
    from ops_pipelines.capabilities.integrity.assets import describe_findings

    corrupt = [f"public.lots (table): block 1, item {i}: bad" for i in range(5)] + [
        "public.lots_code (index): wrong order",
        "public.orders_pkey (index): the server process checking it ended",
    ]
    text = describe_findings(corrupt, [])
    assert text.startswith("3 corrupt relations; 7 findings: public.lots (table): block 1, item 0: bad (and 4 more")
    assert "public.lots_code (index)" in text and "public.orders_pkey (index)" in text
