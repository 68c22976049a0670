"""Connections, external programs and throwaway clusters, against the real things."""

import os
import time

import pytest

from ops_pipelines.errors import CommandFailed, DatabaseError
from ops_pipelines.resources import commands
from ops_pipelines.resources.cluster import LocalCluster
from ops_pipelines.resources.postgres import connect, describe_dsn


def test_sessions_say_who_they_are_and_how_long_they_wait(empty_db):
    with connect(empty_db, statement_timeout="90s", lock_timeout="3s") as conn:
        row = conn.execute(
            "SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS st,"
            " current_setting('lock_timeout') AS lt"
        ).fetchone()
    assert row == {"app": "ops_pipelines", "st": "90s", "lt": "3s"}


def test_statement_timeout_is_enforced_with_a_one_line_cause(empty_db):
    with pytest.raises(DatabaseError, match="canceling statement due to statement timeout") as info:
        with connect(empty_db, statement_timeout="1s") as conn:
            conn.execute("SELECT pg_sleep(5)")
    assert "\n" not in str(info.value)


def test_unreachable_server_is_named_without_password():
    dsn = "postgresql://ops:hunter2@127.0.0.1:1/erp"
    with pytest.raises(DatabaseError) as info:
        with connect(dsn, connect_timeout="2s"):
            pass
    message = str(info.value)
    assert message.startswith("cannot connect to ops@127.0.0.1:1/erp: ")
    assert "hunter2" not in message


def test_describe_dsn_hides_the_password():
    assert describe_dsn("host=db port=6432 user=ops password=hunter2 dbname=erp") == "ops@db:6432/erp"
    assert "hunter2" not in describe_dsn("postgresql://ops:hunter2@db/erp")


def test_libpq_env_keeps_passwords_off_the_command_line():
    env = commands.libpq_env("postgresql://ops:hunter2@db:6432/erp?sslmode=require")
    assert env == {
        "PGHOST": "db", "PGPORT": "6432", "PGUSER": "ops", "PGPASSWORD": "hunter2",
        "PGDATABASE": "erp", "PGSSLMODE": "require", "PGAPPNAME": "ops_pipelines",
    }


def test_failed_command_reports_its_last_stderr_line():
    with pytest.raises(CommandFailed, match=r"^sh exited with 3: second$"):
        commands.run(["sh", "-c", "echo first >&2; echo second >&2; exit 3"], timeout=10)


def test_timeout_kills_the_whole_process_group(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    started = time.monotonic()
    with pytest.raises(CommandFailed, match="timed out after 1s"):
        # The background sleep would outlive a kill of the shell alone.
        commands.run(["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], timeout=1)
    assert time.monotonic() - started < 15
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its new parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_child_environment_is_explicit():
    os.environ["OPS_TEST_SHOULD_NOT_LEAK"] = "1"
    try:
        result = commands.run(["env"], timeout=10, env={"PGPASSWORD": "x"})
    finally:
        del os.environ["OPS_TEST_SHOULD_NOT_LEAK"]
    assert "OPS_TEST_SHOULD_NOT_LEAK" not in result.stdout
    assert "PGPASSWORD=x" in result.stdout


@pytest.mark.slow
def test_throwaway_cluster_starts_serves_and_leaves_nothing():
    cluster = LocalCluster.temporary(prefix="ops_test_cluster_")
    parent = cluster.data_dir.parent
    try:
        cluster.init()
        cluster.start()
        assert cluster.running()
        with connect(cluster.dsn()) as conn:
            assert conn.execute("SELECT current_setting('port') AS port").fetchone()["port"] == str(cluster.port)
        cluster.start()  # idempotent
    finally:
        cluster.remove()
    assert not parent.exists()
    with pytest.raises(DatabaseError):
        with connect(cluster.dsn(), connect_timeout="2s"):
            pass


def test_transient_failures_ask_dagster_to_retry_and_others_do_not():
    import dagster as dg

    from ops_pipelines.assets.common import retry_if_transient
    from ops_pipelines.errors import DatabaseUnavailable, LockTimeout

    for transient in (DatabaseUnavailable("cannot connect"), LockTimeout("lock timeout")):
        with pytest.raises(dg.RetryRequested):
            with retry_if_transient():
                raise transient
    with pytest.raises(DatabaseError, match="duplicate key"):
        with retry_if_transient():
            raise DatabaseError("duplicate key")


def test_lock_timeouts_are_their_own_kind(empty_db):
    from ops_pipelines.errors import LockTimeout

    with connect(empty_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int)")
    with connect(empty_db) as holder:
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(LockTimeout, match="lock timeout"):
            with connect(empty_db, lock_timeout="1s") as conn:
                conn.execute("SELECT * FROM t")
