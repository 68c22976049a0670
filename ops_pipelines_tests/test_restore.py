"""Restore tests against real PostgreSQL: proven, refused, mismatched, and always cleaned up."""

import contextlib
import datetime as dt
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ops_pipelines.adapters.postgres import connect
from ops_pipelines.adapters.sandbox import SandboxError, sandbox_for
from ops_pipelines.adapters.sandbox.local_cluster import LocalClusterSandbox
from ops_pipelines.adapters.storage import LocalStorage
from ops_pipelines.core.backups.backup import run_backup
from ops_pipelines.core.backups.catalog import complete_backups, list_backups
from ops_pipelines.core.backups.proof import newest_proof
from ops_pipelines.core.backups.restore import RestoreRefused, recent_restore, run_restore_test
from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines.errors import DatabaseError
from ops_pipelines_tests.helpers import make_config

SANITY = "restore_test: {sanity_queries: ['SELECT 1 FROM users WHERE is_active LIMIT 1']}"


def leftovers() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob("ops_restore_*"))


@pytest.fixture
def backed_up(erp_db, tmp_path):
    """(config, storage, newest complete backup entry) for a fresh backup of the ERP copy."""
    config = make_config(tmp_path, {"erp": erp_db}, SANITY)
    storage = LocalStorage(tmp_path)
    run_backup(config.databases[0], storage)
    return config, storage, complete_backups(storage, "erp")[-1]


class UnopenableSandbox(LocalClusterSandbox):
    """A real sandbox that records being opened, for tests that must fail before it is."""

    def open(self, min_major):
        raise AssertionError("the sandbox must not be opened for a backup without a manifest")


class WatchedSandbox(LocalClusterSandbox):
    """A real sandbox (it starts while the dump is read) that records, when it closes, the tables
    its target holds: a damaged backup must leave none (nothing was restored)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables_at_close: list[int] = []

    @contextlib.contextmanager
    def open(self, min_major):
        with super().open(min_major) as target:
            try:
                yield target
            finally:
                with connect(target.dsn) as conn:
                    row = conn.execute(
                        "SELECT count(*) AS n FROM pg_tables"
                        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                    ).fetchone()
                    self.tables_at_close.append(row["n"])


def test_a_good_backup_is_proven_and_nothing_is_left(backed_up, erp_db):
    config, storage, entry = backed_up
    with connect(erp_db, autocommit=True) as conn:  # rows change after the dump: the manifest still holds
        conn.execute("DELETE FROM order_lines WHERE id % 2 = 0")
    report = run_restore_test(config.databases[0], storage, entry, sandbox_for(config.databases[0]))
    assert report.passed, (report.restore_errors, report.mismatches)
    assert report.tables_checked == 10 and report.sanity_queries_passed == 1
    assert report.rows_checked == sum(storage_manifest_counts(storage, entry).values())
    assert report.restore_seconds > 0 and "local cluster PostgreSQL" in report.sandbox
    assert proven_stamp(storage) == entry.stamp
    assert leftovers() == []


def proven_stamp(storage) -> str | None:
    proof = newest_proof(storage, list_backups(storage, "erp"))[0]
    return proof.backup if proof else None


def storage_manifest_counts(storage, entry):
    from ops_pipelines.core.backups.catalog import read_manifest

    return read_manifest(storage, entry).table_counts


def test_a_deleted_row_is_a_mismatch_naming_the_table(backed_up):
    config, storage, entry = backed_up

    def lose_a_row(dsn: str) -> None:
        with connect(dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM public.lots WHERE id = (SELECT min(id) FROM public.lots)")

    report = run_restore_test(
        config.databases[0], storage, entry, sandbox_for(config.databases[0]), after_restore=lose_a_row
    )
    assert not report.passed
    assert [(m.table, m.expected_rows - m.restored_rows) for m in report.mismatches] == [("public.lots", 1)]
    assert proven_stamp(storage) is None
    assert list_backups(storage, "erp")[-1].failed  # the failure is evidence, left beside the backup
    assert leftovers() == []


@pytest.mark.parametrize("damage", ["tamper", "truncate"])
def test_damaged_backups_fail_before_anything_is_restored(backed_up, damage):
    config, storage, entry = backed_up
    dump = storage.path(entry.dump.key)
    data = bytearray(dump.read_bytes())
    if damage == "tamper":
        data[len(data) // 2] ^= 0x01
    else:
        del data[len(data) // 2 :]
    dump.write_bytes(bytes(data))
    sandbox = WatchedSandbox()
    with pytest.raises(RestoreRefused, match="not restored"):
        run_restore_test(config.databases[0], storage, list_backups(storage, "erp")[-1], sandbox)
    assert sandbox.tables_at_close == [0]  # the sandbox started alongside the read; nothing reached it
    assert leftovers() == []


def test_a_backup_without_manifest_is_refused(backed_up):
    config, storage, entry = backed_up
    storage.delete(entry.manifest.key)
    with pytest.raises(RestoreRefused, match="has no manifest"):
        run_restore_test(config.databases[0], storage, list_backups(storage, "erp")[-1], UnopenableSandbox())


@pytest.mark.parametrize("interruption", [RuntimeError("failed mid-restore"), KeyboardInterrupt()])
def test_the_sandbox_is_removed_on_failure_and_cancellation(backed_up, interruption):
    config, storage, entry = backed_up
    ports = []

    def fail(dsn: str) -> None:
        ports.append(conninfo_to_dict(dsn)["port"])
        raise interruption

    with pytest.raises(type(interruption)):
        run_restore_test(config.databases[0], storage, entry, sandbox_for(config.databases[0]), after_restore=fail)
    assert leftovers() == []
    with pytest.raises(Exception, match="connect"):  # the server is gone, its port free
        with connect(f"host=127.0.0.1 port={ports[0]} user=postgres dbname=postgres", connect_timeout="2s"):
            pass


def test_scratch_database_sandbox(backed_up, pg_server):
    config, storage, entry = backed_up
    db = make_config(
        storage.root, {"erp": "host=unused"}, f"restore_test: {{sandbox: scratch_database, scratch_dsn: '{pg_server}'}}"
    ).databases[0]
    report = run_restore_test(db, storage, entry, sandbox_for(db))
    assert report.passed and "scratch database erp_restore_check" in report.sandbox
    with connect(pg_server) as conn:
        assert (
            conn.execute("SELECT count(*) AS n FROM pg_database WHERE datname = 'erp_restore_check'").fetchone()["n"]
            == 0
        )


def test_docker_sandbox(backed_up):
    docker = pytest.importorskip("docker")
    try:
        docker.from_env().ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no engine here
        pytest.skip(f"no Docker engine reachable: {exc}")
    config, storage, entry = backed_up
    db = make_config(storage.root, {"erp": "host=unused"}, "restore_test: {sandbox: docker}").databases[0]
    report = run_restore_test(db, storage, entry, sandbox_for(db))
    assert report.passed and report.sandbox.startswith("docker postgres:")


def test_no_server_new_enough_is_said_clearly():
    with pytest.raises(SandboxError, match="no PostgreSQL server of version 99 or newer is installed"):
        LocalClusterSandbox().binaries_for(99)


def test_restore_recent():
    now = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    assert not recent_restore(None, dt.timedelta(days=8), now).passed
    assert recent_restore("20261120T020000Z", dt.timedelta(days=8), now).passed
    stale = recent_restore("20261101T020000Z", dt.timedelta(days=8), now)
    assert not stale.passed and "20261101T020000Z" in stale.description


def test_restore_job_sensor_and_checks_in_dagster(erp_db, tmp_path):
    config = make_config(tmp_path, {"erp": erp_db}, SANITY)
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    assert (
        capability_job(defs, config, "erp", "backup").execute_in_process(partition_key="erp", instance=instance).success
    )

    sensor = defs.resolve_sensor_def("restore_after_backup_sensor")
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        requests = sensor(context)
        cursor = context.cursor
    stamp = list_backups(LocalStorage(tmp_path), "erp")[-1].stamp
    assert [(r.job_name, r.partition_key, r.run_key) for r in requests] == [
        ("restore_test_job", "erp", f"restore-test:erp:{stamp}")
    ]
    with dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor) as context:
        assert isinstance(sensor(context), dg.SkipReason)  # one restore test per backup

    result = capability_job(defs, config, "erp", "restore_test").execute_in_process(
        partition_key="erp", instance=instance, run_config=requests[0].run_config
    )
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["restore_verified"].passed
    metadata = instance.get_latest_materialization_event(dg.AssetKey("restore_test")).asset_materialization.metadata
    assert metadata["backup"].value == stamp and metadata["tables_checked"].value == 10
    assert metadata["restore_seconds"].value > 0

    again = capability_job(defs, config, "erp", "backup").execute_in_process(partition_key="erp", instance=instance)
    recent = {c.check_name: c for c in again.get_asset_check_evaluations()}["restore_recent"]
    assert recent.passed


def test_monthly_restore_schedule_runs_on_the_first_saturday_only(tmp_path):
    config = make_config(tmp_path, {"erp": "host=unused"})
    schedule = build_definitions(config).resolve_schedule_def("restore_test_monthly")
    assert schedule.cron_schedule == "0 2 * * 6" and schedule.execution_timezone == "Asia/Ho_Chi_Minh"
    zone = dt.timezone(dt.timedelta(hours=7))
    first = schedule(dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 12, 5, 2, tzinfo=zone)))
    second = schedule(dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 12, 12, 2, tzinfo=zone)))
    assert [(r.partition_key, r.run_key) for r in first] == [("erp", "restore_test_job:erp:2026-12")]
    assert isinstance(second, dg.SkipReason)


def test_leftovers_whose_owner_is_gone_are_removed_and_a_live_restore_tests_are_not(backed_up):
    from ops_pipelines.adapters.cluster import LocalCluster
    from ops_pipelines.adapters.sandbox.local_cluster import owned

    config, storage, entry = backed_up
    # As if the machine crashed mid-test: a cluster directory with its server up, and no owner.
    orphan = LocalCluster.temporary(prefix="ops_restore_erp-cluster-")
    orphan.init()
    orphan.start()
    (orphan.data_dir.parent / ".owner.lock").touch()  # its owner's lock, released when the owner died
    try:
        with owned("erp_prod", "dump") as live:  # another restore test, still running (any database)
            report = run_restore_test(config.databases[0], storage, entry, sandbox_for(config.databases[0]))
            assert report.passed
            assert not orphan.data_dir.parent.exists() and not orphan.running()
            assert live.exists()
    finally:
        orphan.remove()


OTHER_USER_CONNECTS = """
import os, sys, psycopg
os.setgroups([]); os.setgid(65534); os.setuid(65534)  # nobody
try:
    psycopg.connect(sys.argv[1], connect_timeout=5).close()
except psycopg.Error as exc:
    print("REFUSED", str(exc).splitlines()[0])
else:
    print("CONNECTED")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another OS user needs root")
def test_the_sandbox_refuses_other_os_users_and_runs_without_root_group():
    sandbox = LocalClusterSandbox(label="erp")
    with sandbox.open(15) as target:
        params = conninfo_to_dict(target.dsn)
        socket_dir = Path(params["host"])
        assert socket_dir.is_absolute() and stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
        with connect(target.dsn) as conn:  # no TCP port is open at all
            assert conn.execute("SELECT current_setting('listen_addresses') AS l").fetchone()["l"] == ""
        # Another local user, even knowing where the socket is and the password, gets nowhere.
        attempt = subprocess.run(
            [sys.executable, "-c", OTHER_USER_CONNECTS, target.dsn], capture_output=True, text=True
        )
        assert attempt.stdout.startswith("REFUSED") and "Permission denied" in attempt.stdout, attempt
        # Without the password, even root (who passes the directory's mode) is refused.
        with pytest.raises(DatabaseError, match="password"):
            with connect(make_conninfo(target.dsn, password="wrong")):
                pass
        servers = _processes_under(socket_dir)
        assert servers, "no sandbox server process found"
        for pid, groups in servers.items():
            assert 0 not in groups, f"sandbox process {pid} has root's group: {groups}"


def _processes_under(directory: Path) -> dict[int, set[int]]:
    """pid -> every group id (real, effective, supplementary) of the server processes of a sandbox directory
    (the postmaster names it; its children's titles do not, so they are found by parent)."""
    processes = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            cmdline = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("Name", "").strip() == "postgres":
            groups = {int(g) for g in fields["Gid"].split()} | {int(g) for g in fields["Groups"].split()}
            processes[int(status.parent.name)] = (int(fields["PPid"]), cmdline, groups)
    postmasters = {pid for pid, (_, cmdline, _) in processes.items() if str(directory) in cmdline}
    return {pid: groups for pid, (ppid, _, groups) in processes.items() if pid in postmasters or ppid in postmasters}


OWNER = """
import signal
from ops_pipelines.adapters.sandbox.local_cluster import LocalClusterSandbox
with LocalClusterSandbox(label="erp").open(15) as target:
    print(target.description, flush=True)
    signal.pause()  # until the test kills it
"""


def test_a_sandbox_dies_with_its_owner_even_by_sigkill():
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    try:
        line = owner.stdout.readline()
        assert "Unix socket only" in line, line
        parent = Path(line.rsplit(", ", 1)[1].rstrip(")\n"))
        assert (parent / "data" / "postmaster.pid").exists()
    finally:
        owner.kill()  # SIGKILL: no finally block, no atexit in the owner runs
        owner.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (parent.exists() or _processes_under(parent)):
        time.sleep(0.1)
    assert not _processes_under(parent), "the sandbox server outlived its owner"
    assert not parent.exists()


def test_a_database_of_2001_tables_verifies(empty_db, tmp_path):
    """M5: counted in one transaction, 2,001 tables ran the sandbox (max_connections 20) out of
    shared memory for locks, and a healthy backup failed as "missing after restore"."""
    with connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "DO $$ BEGIN FOR i IN 1..2001 LOOP"
            " EXECUTE format('CREATE TABLE public.plain_%s (id int PRIMARY KEY);"
            " INSERT INTO public.plain_%s VALUES (1)', i, i);"
            " END LOOP; END $$"
        )
    config = make_config(tmp_path, {"wide": empty_db})
    storage = LocalStorage(tmp_path)
    run_backup(config.databases[0], storage)
    entry = complete_backups(storage, "wide")[-1]
    report = run_restore_test(config.databases[0], storage, entry, sandbox_for(config.databases[0]))
    assert report.passed, (report.restore_errors[:3], report.mismatches[:3])
    assert report.tables_checked == 2001 and report.rows_checked == 2001
