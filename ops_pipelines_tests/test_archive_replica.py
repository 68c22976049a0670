"""pt-archiver's --check-slave-lag, on a real streaming replica: a throwaway primary cluster and a
standby made with pg_basebackup. While the standby's replay is paused behind new writes, archival
waits between batches (and max_runtime stops it cleanly); once replay resumes, it runs to the end."""

import shutil
import threading
import time

import pytest

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.cluster import LocalCluster, free_port, server_os_user
from ops_pipelines.adapters.postgres import connect
from ops_pipelines.core.archive import ArchiveError, run_archive
from ops_pipelines_tests.helpers import make_config


@pytest.fixture(scope="module")
def primary_and_standby():
    primary = LocalCluster.temporary(prefix="ops_test_primary_")
    standby = None
    try:
        primary.init()
        primary.start()
        with connect(primary.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE erp")
        with connect(primary.dsn("erp"), autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz NOT NULL);"
                "INSERT INTO events SELECT n, now() - interval '2 years' FROM generate_series(1, 3000) AS n"
            )
        standby = LocalCluster(data_dir=primary.data_dir.parent / "standby", port=free_port())
        standby.data_dir.mkdir(mode=0o700)
        user = server_os_user()
        if user:
            shutil.chown(standby.data_dir, user, user)
        commands.run(
            [commands.find_program("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"]
            + ["-D", standby.data_dir, "-R", "-X", "stream", "--no-sync", "--checkpoint=fast"],
            timeout=120,
            as_user=user,
        )
        standby.start()
        yield primary, standby
    finally:
        if standby is not None:
            standby.stop()
        primary.remove()


def lag(standby: LocalCluster) -> float:
    """What the archival reads (sql/archive_replica_lag.sql)."""
    from ops_pipelines.adapters.postgres import read_sql

    with connect(standby.dsn("erp")) as conn:
        return conn.execute(read_sql("archive_replica_lag.sql")).fetchone()["lag_seconds"]


def test_archival_waits_while_the_replica_is_behind_and_goes_on_when_it_catches_up(primary_and_standby, tmp_path):
    primary, standby = primary_and_standby
    rule = (
        "archive:\n  - {name: old_events, table: public.events, age_column: at, older_than: 365 days,"
        f' batch_size: 500, replica_dsn: "{standby.dsn("erp")}", max_replica_lag: 1s, max_runtime: 4s}}\n'
    )
    db = make_config(tmp_path, {"erp": primary.dsn("erp")}, rule).databases[0]
    with connect(standby.dsn("erp"), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    with connect(primary.dsn("erp"), autocommit=True) as conn:
        conn.execute("UPDATE events SET at = at WHERE id = 1")  # WAL the paused replica receives, not replays
    deadline = time.monotonic() + 30
    while lag(standby) <= 1.5 and time.monotonic() < deadline:  # the replica falls behind: poll
        time.sleep(0.2)
    held = run_archive(db, db.archive[0], log=print)
    assert held.why_stopped == "max_runtime" and held.batches == 0  # nothing moved while the replica lagged
    assert held.replica_paused_seconds >= 3

    def resume_soon() -> None:
        time.sleep(1.5)
        with connect(standby.dsn("erp"), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    threading.Thread(target=resume_soon).start()
    unlimited = rule.replace(", max_runtime: 4s", "")
    db = make_config(tmp_path, {"erp": primary.dsn("erp")}, unlimited).databases[0]
    run = run_archive(db, db.archive[0])
    assert run.why_stopped == "done" and run.tables["public.events"].removed == 3000
    assert run.replica_paused_seconds >= 1  # it waited for the resume, then went on


def test_a_replica_dsn_that_is_not_a_replica_is_refused_before_anything_moves(primary_and_standby, tmp_path):
    primary, _ = primary_and_standby
    rule = (
        "archive:\n  - {name: old_events, table: public.events, age_column: at, older_than: 365 days,"
        f' replica_dsn: "{primary.dsn("erp")}", max_replica_lag: 1s}}\n'
    )
    db = make_config(tmp_path, {"erp": primary.dsn("erp")}, rule).databases[0]
    with pytest.raises(ArchiveError, match=r"replica_dsn .* is not a replica \(pg_is_in_recovery\(\) is false\)"):
        run_archive(db, db.archive[0])
