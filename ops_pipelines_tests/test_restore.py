"""Restore tests against real PostgreSQL: proven, refused, mismatched, and always cleaned up."""

import datetime as dt
import tempfile
from pathlib import Path

import dagster as dg
import pytest
from psycopg.conninfo import conninfo_to_dict

from ops_pipelines.core.backup import run_backup
from ops_pipelines.core.backup_catalog import complete_backups, list_backups, newest_verified_stamp
from ops_pipelines.core.restore import RestoreRefused, recent_restore, run_restore_test
from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines.resources.postgres import connect
from ops_pipelines.resources.sandbox import SandboxError, sandbox_for
from ops_pipelines.resources.sandbox.local_cluster import LocalClusterSandbox
from ops_pipelines.resources.storage import LocalStorage
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
        raise AssertionError("the sandbox must not be opened for a damaged backup")


def test_a_good_backup_is_proven_and_nothing_is_left(backed_up, erp_db):
    config, storage, entry = backed_up
    with connect(erp_db, autocommit=True) as conn:  # rows change after the dump: the manifest still holds
        conn.execute("DELETE FROM order_lines WHERE id % 2 = 0")
    report = run_restore_test(config.databases[0], storage, entry, sandbox_for(config.databases[0]))
    assert report.passed, (report.restore_errors, report.mismatches)
    assert report.tables_checked == 10 and report.sanity_queries_passed == 1
    assert report.rows_checked == sum(storage_manifest_counts(storage, entry).values())
    assert report.restore_seconds > 0 and "local cluster PostgreSQL" in report.sandbox
    assert newest_verified_stamp(storage, "erp") == entry.stamp
    assert leftovers() == []


def storage_manifest_counts(storage, entry):
    from ops_pipelines.core.backup_catalog import read_manifest

    return read_manifest(storage, entry).table_counts


def test_a_deleted_row_is_a_mismatch_naming_the_table(backed_up):
    config, storage, entry = backed_up

    def lose_a_row(dsn: str) -> None:
        with connect(dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM public.lots WHERE id = (SELECT min(id) FROM public.lots)")

    report = run_restore_test(config.databases[0], storage, entry, sandbox_for(config.databases[0]), after_restore=lose_a_row)
    assert not report.passed
    assert [(m.table, m.expected_rows - m.restored_rows) for m in report.mismatches] == [("public.lots", 1)]
    assert newest_verified_stamp(storage, "erp") is None
    assert leftovers() == []


@pytest.mark.parametrize("damage", ["tamper", "truncate"])
def test_damaged_backups_fail_before_any_restore(backed_up, damage):
    config, storage, entry = backed_up
    dump = storage.path(entry.dump.key)
    data = bytearray(dump.read_bytes())
    if damage == "tamper":
        data[len(data) // 2] ^= 0x01
    else:
        del data[len(data) // 2:]
    dump.write_bytes(bytes(data))
    with pytest.raises(RestoreRefused, match="not restored"):
        run_restore_test(config.databases[0], storage, list_backups(storage, "erp")[-1], UnopenableSandbox())


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
    db = make_config(storage.root, {"erp": "host=unused"},
                     f"restore_test: {{sandbox: scratch_database, scratch_dsn: '{pg_server}'}}").databases[0]
    report = run_restore_test(db, storage, entry, sandbox_for(db))
    assert report.passed and "scratch database erp_restore_check" in report.sandbox
    with connect(pg_server) as conn:
        assert conn.execute("SELECT count(*) AS n FROM pg_database WHERE datname = 'erp_restore_check'").fetchone()["n"] == 0


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
    now = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
    assert not recent_restore(None, dt.timedelta(days=8), now).passed
    assert recent_restore("20261120T020000Z", dt.timedelta(days=8), now).passed
    stale = recent_restore("20261101T020000Z", dt.timedelta(days=8), now)
    assert not stale.passed and "20261101T020000Z" in stale.description


def test_restore_job_sensor_and_checks_in_dagster(erp_db, tmp_path):
    config = make_config(tmp_path, {"erp": erp_db}, SANITY)
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    assert capability_job(defs, config, "erp", "backup").execute_in_process(instance=instance).success

    sensor = defs.resolve_sensor_def("restore_after_backup_sensor")
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        requests = list(sensor(context))
        cursor = context.cursor
    stamp = list_backups(LocalStorage(tmp_path), "erp")[-1].stamp
    assert [(r.job_name, r.run_key) for r in requests] == [("ops_erp", f"restore-test:erp:{stamp}")]
    assert requests[0].asset_selection == [dg.AssetKey(["erp", "restore_test"])]
    with dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor) as context:
        assert list(sensor(context)) == []  # one restore test per backup

    result = capability_job(defs, config, "erp", "restore_test").execute_in_process(instance=instance, run_config=requests[0].run_config)
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["restore_verified"].passed
    metadata = instance.get_latest_materialization_event(dg.AssetKey(["erp", "restore_test"])).asset_materialization.metadata
    assert metadata["backup"].value == stamp and metadata["tables_checked"].value == 10
    assert metadata["restore_seconds"].value > 0

    again = capability_job(defs, config, "erp", "backup").execute_in_process(instance=instance)
    recent = {c.check_name: c for c in again.get_asset_check_evaluations()}["restore_recent"]
    assert recent.passed


def test_monthly_restore_schedule_runs_on_the_first_saturday_only(tmp_path):
    config = make_config(tmp_path, {"erp": "host=unused"})
    schedule = build_definitions(config).resolve_schedule_def("restore_test_erp_monthly")
    assert schedule.cron_schedule == "0 2 * * 6" and schedule.execution_timezone == "Asia/Ho_Chi_Minh"
    zone = dt.timezone(dt.timedelta(hours=7))
    first = schedule(dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 12, 5, 2, tzinfo=zone)))
    second = schedule(dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 12, 12, 2, tzinfo=zone)))
    assert isinstance(first, dg.RunRequest) and first.run_key == "monthly:2026-12"
    assert isinstance(second, dg.SkipReason)


def test_leftovers_of_a_killed_run_are_removed_and_only_that_databases(backed_up):
    from ops_pipelines.resources.cluster import LocalCluster
    from ops_pipelines.resources.sandbox.local_cluster import scratch_prefix

    config, storage, entry = backed_up
    orphan = LocalCluster.temporary(prefix=scratch_prefix("erp", "cluster"))  # as if SIGKILLed mid-test
    orphan.init()
    orphan.start()
    other = Path(tempfile.mkdtemp(prefix=scratch_prefix("erp_prod", "dump")))
    try:
        report = run_restore_test(config.databases[0], storage, entry, sandbox_for(config.databases[0]))
        assert report.passed
        assert not orphan.data_dir.parent.exists()
        assert other.exists()  # another database's run is not touched
    finally:
        orphan.remove()
        other.rmdir()
