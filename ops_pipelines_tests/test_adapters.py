"""Connections, external programs and throwaway clusters, against the real things."""

import os
import time
from pathlib import Path

import pytest

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.cluster import LocalCluster
from ops_pipelines.adapters.postgres import connect, describe_dsn
from ops_pipelines.errors import CommandFailed, DatabaseError


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


def test_tools_get_every_connection_parameter_but_the_password():
    conn = commands.tool_connection(
        "postgresql://ops:hunter2@db:6432/erp?sslmode=require&keepalives=1&channel_binding=require"
    )
    assert conn.env == {"PGPASSWORD": "hunter2"}
    assert "hunter2" not in conn.dbname
    for part in (
        "host=db",
        "port=6432",
        "user=ops",
        "dbname=erp",
        "sslmode=require",
        "keepalives=1",
        "channel_binding=require",
        "application_name=ops_pipelines",
    ):
        assert part in conn.dbname
    with pytest.raises(CommandFailed, match="sslpassword cannot be passed"):
        commands.tool_connection("host=db sslpassword=x")


def test_failed_command_reports_its_last_stderr_line():
    with pytest.raises(CommandFailed, match=r"^sh exited with 3: second$"):
        commands.run(["sh", "-c", "echo first >&2; echo second >&2; exit 3"], timeout=10)


def test_a_tools_error_line_is_the_cause_with_its_detail():
    stderr = (
        "pg_dump: warning: something harmless\n"
        "pg_dump: error: query failed: ERROR:  canceling statement due to lock timeout\n"
        "pg_dump: detail: Query was: LOCK TABLE public.orders IN ACCESS SHARE MODE\n"
    )
    assert commands.error_summary(stderr) == (
        "query failed: ERROR: canceling statement due to lock timeout "
        "(detail: Query was: LOCK TABLE public.orders IN ACCESS SHARE MODE)"
    )
    assert commands.error_summary("") == "(no error output)"


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

    from ops_pipelines.capabilities.common import retry_if_transient
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


@pytest.mark.parametrize(
    ("dsn_change", "cause"),
    [({"dbname": "ops_no_such_database"}, "does not exist"), ({"user": "ops_no_such_role"}, "does not exist")],
)
def test_unknown_database_or_role_fails_at_once_not_as_transient(empty_db, dsn_change, cause):
    from psycopg.conninfo import make_conninfo

    from ops_pipelines.errors import TransientError

    with pytest.raises(DatabaseError, match=cause) as info:
        with connect(make_conninfo(empty_db, **dsn_change)):
            pass
    assert not isinstance(info.value, TransientError)


def test_refused_connection_is_transient():
    from ops_pipelines.errors import DatabaseUnavailable

    with pytest.raises(DatabaseUnavailable, match="Connection refused"):
        with connect("host=127.0.0.1 port=1 user=postgres", connect_timeout="2s"):
            pass


def test_an_auth_failure_fails_the_run_in_seconds_without_retry(pg_server, tmp_path):
    """A wrong role used to be retried 3 × 120 s (with failed logins piling up on the server)."""
    import dagster as dg
    from psycopg.conninfo import make_conninfo

    from ops_pipelines.definitions import build_definitions, capability_job
    from ops_pipelines_tests.helpers import make_config

    config = make_config(tmp_path, {"erp": make_conninfo(pg_server, user="ops_no_such_role")})
    instance = dg.DagsterInstance.ephemeral()
    started = time.monotonic()
    result = capability_job(build_definitions(config), config, "erp", "backup").execute_in_process(
        partition_key="erp", instance=instance, raise_on_error=False
    )
    assert not result.success and time.monotonic() - started < 10
    events = [e.event_type_value for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" not in events
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert 'role "ops_no_such_role" does not exist' in str(failure.event_specific_data.error)


def test_an_error_on_one_connection_inside_anothers_block_names_its_own_server(empty_db, pg_server):
    from ops_pipelines.adapters.postgres import errors_named

    with connect(empty_db) as outer, connect(pg_server) as inner:
        inner.execute("SELECT 1")
        with pytest.raises(DatabaseError) as info:
            with errors_named(describe_dsn(empty_db)):
                outer.execute("SELECT 1/0")
    assert str(info.value).startswith(describe_dsn(empty_db)) and "division by zero" in str(info.value)


def test_a_session_on_a_configured_database_says_which_action_it_belongs_to(empty_db, tmp_path):
    from ops_pipelines.adapters.postgres import connect_db
    from ops_pipelines_tests.helpers import make_config

    db = make_config(tmp_path, {"erp": empty_db}, "timeouts: {lock: 7s, statement: 2h}").databases[0]
    with connect_db(db, "vacuum") as conn:
        row = conn.execute(
            "SELECT current_setting('application_name') AS app, current_setting('lock_timeout') AS lt,"
            " current_setting('statement_timeout') AS st"
        ).fetchone()
    assert row == {"app": "ops_pipelines/vacuum", "lt": "7s", "st": "2h"}
    with connect_db(db, "table_stats", statement_timeout="2 min") as conn:
        assert conn.execute("SELECT current_setting('statement_timeout') AS st").fetchone()["st"] == "2min"


def test_a_streamed_program_is_killed_with_its_children_when_the_reader_fails(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    script = f"sleep 600 & echo $! > {pid_file}; echo data; echo 'prog: error: it broke' >&2; wait"
    with pytest.raises(RuntimeError, match="reader gave up"):
        with commands.streaming(["sh", "-c", script]) as program:
            assert os.read(program.stdout_fd, 5) == b"data\n"
            raise RuntimeError("reader gave up")
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while (
        time.monotonic() < deadline
        and os.path.exists(f"/proc/{grandchild}")
        and Path(f"/proc/{grandchild}/stat").read_text().split()[2] != "Z"
    ):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{grandchild}") or Path(f"/proc/{grandchild}/stat").read_text().split()[2] == "Z"
    with commands.streaming(
        ["sh", "-c", "echo 'prog: error: it broke' >&2; echo 'prog: detail: why' >&2; exit 2"]
    ) as failing:
        code = failing.wait(timeout=10)
    assert failing.failure(code) == "sh exited with 2: it broke (detail: why)"
