"""`<db>/backup` against real PostgreSQL: restorable, snapshot-consistent, and all or nothing."""

import json
import os
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from ops_pipelines.core import backup_checks
from ops_pipelines.core.backup import BackupFailed, run_backup
from ops_pipelines.core.backup_catalog import list_backups, newest_complete_stamp
from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines.errors import DatabaseError
from ops_pipelines.resources.cluster import LocalCluster
from ops_pipelines.resources.postgres import connect
from ops_pipelines.resources.storage import LocalStorage
from ops_pipelines_tests.helpers import make_config, restore_dump, row_counts


def backup_of(erp_db: str, store: Path, extra: str = ""):
    db = make_config(store, {"erp": erp_db}, extra).databases[0]
    return run_backup(db, LocalStorage(store))


def test_backup_restores_with_identical_row_counts(erp_db, empty_db, tmp_path):
    result = backup_of(erp_db, tmp_path)
    manifest = result.manifest
    dump = Path(result.uri)
    assert dump.name.endswith(".dump.zst") and dump.stat().st_size == manifest.bytes
    assert manifest.table_counts["public.orders"] == 2000
    assert manifest.table_counts["auth.login_attempts"] > 0
    assert manifest.server_version_num >= 150000 and manifest.counted == "all"
    assert manifest.dump_bytes > manifest.bytes  # compressed
    written = json.loads(dump.with_name(dump.name.replace(".dump.zst", ".manifest.json")).read_text())
    assert written["sha256"] == manifest.sha256 and "password" not in json.dumps(written)

    restore_dump(dump, empty_db)
    assert row_counts(empty_db, manifest.table_counts) == manifest.table_counts
    with connect(empty_db) as conn:  # schema features came back too
        assert conn.execute("SELECT last_value AS v FROM order_number_seq").fetchone()["v"] >= 100000
        assert conn.execute("SELECT count(*) AS n FROM pg_trigger WHERE tgname = 'orders_touch_updated_at'").fetchone()["n"] == 1


def test_counts_are_those_of_the_dump_snapshot_under_concurrent_writes(erp_db, empty_db, tmp_path):
    stop = threading.Event()

    def write_while_dumping():
        with connect(erp_db, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO orders (customer_id, status, created_at) VALUES (1, 'draft', now())")
                conn.execute("DELETE FROM auth.login_attempts WHERE id = (SELECT min(id) FROM auth.login_attempts)")

    writer = threading.Thread(target=write_while_dumping)
    writer.start()
    try:
        time.sleep(0.2)
        result = backup_of(erp_db, tmp_path)
    finally:
        stop.set()
        writer.join()
    restore_dump(Path(result.uri), empty_db)
    assert row_counts(empty_db, result.manifest.table_counts) == result.manifest.table_counts
    assert row_counts(erp_db, ["public.orders"])["public.orders"] > result.manifest.table_counts["public.orders"]


def test_listed_tables_only(erp_db, tmp_path):
    result = backup_of(erp_db, tmp_path, "backup: {count_tables: [public.orders, auth.login_attempts]}")
    assert set(result.manifest.table_counts) == {"public.orders", "auth.login_attempts"}
    assert result.manifest.counted == "listed"
    with pytest.raises(BackupFailed, match="count_tables names tables that do not exist in erp: public.nope"):
        backup_of(erp_db, tmp_path / "again", "backup: {count_tables: [public.nope]}")


def test_checks_pass_on_a_good_backup_and_fail_on_damaged_ones(erp_db, tmp_path):
    storage = LocalStorage(tmp_path)
    result = backup_of(erp_db, tmp_path)
    entry = list_backups(storage, "erp")[-1]
    assert backup_checks.checksum(storage, entry).passed
    readable = backup_checks.readable(storage, entry)
    assert readable.passed, readable.description
    assert readable.metadata["table_data_entries"] >= 10

    dump = Path(result.uri)
    original = dump.read_bytes()
    tampered = bytearray(original)
    tampered[len(original) // 2] ^= 0xFF
    dump.write_bytes(bytes(tampered))
    verdict = backup_checks.checksum(storage, entry)
    assert not verdict.passed and "does not match the manifest" in verdict.description
    assert not backup_checks.readable(storage, entry).passed

    dump.write_bytes(original[: len(original) // 3])
    truncated = list_backups(storage, "erp")[-1]
    assert "truncated or replaced" in backup_checks.checksum(storage, truncated).description
    verdict = backup_checks.readable(storage, truncated)
    assert not verdict.passed and "truncated" in verdict.description

    dump.unlink()
    verdict = backup_checks.freshness(newest_complete_stamp(storage, "erp"), 26, result.manifest.finished_at)
    assert not verdict.passed and "no complete backup" in verdict.description


def test_asset_and_checks_in_dagster(erp_db, tmp_path):
    config = make_config(tmp_path, {"erp": erp_db})
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    job = capability_job(defs, config, "erp", "backup")
    result = job.execute_in_process(instance=instance)
    assert result.success
    metadata = instance.get_latest_materialization_event(dg.AssetKey(["erp", "backup"])).asset_materialization.metadata
    assert metadata["tables"].value == 10 and metadata["total_rows"].value > 2000
    assert metadata["mb_per_second"].value > 0 and metadata["bytes"].value > 0
    checks = {e.check_name: e
              for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"backup_fresh", "backup_checksum", "backup_readable", "backup_size_sane", "restore_recent"}
    never_tested = checks.pop("restore_recent")  # runs with every backup: no restore test yet
    assert not never_tested.passed and "ever passed a restore test" in never_tested.description
    assert all(c.passed for c in checks.values()), {k: c.description for k, c in checks.items()}


def test_unreachable_database_leaves_nothing(tmp_path):
    with pytest.raises(DatabaseError, match="cannot connect to ops@127.0.0.1:1/erp"):
        backup_of("postgresql://ops:hunter2@127.0.0.1:1/erp", tmp_path)
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.slow
def test_wrong_password_fails_in_one_line_without_the_password(tmp_path):
    cluster = LocalCluster.temporary(
        prefix="ops_test_auth_",
        hba=["host all postgres 127.0.0.1/32 trust", "host all all 127.0.0.1/32 scram-sha-256"],
    )
    try:
        cluster.init()
        cluster.start()
        with connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE ROLE ops LOGIN PASSWORD 'right-password'")
        dsn = f"postgresql://ops:wrong-password-xyz@127.0.0.1:{cluster.port}/postgres"
        with pytest.raises(DatabaseError) as info:
            backup_of(dsn, tmp_path)
        message = str(info.value)
        assert "password authentication failed" in message and "\n" not in message
        assert "wrong-password-xyz" not in message
        assert list(tmp_path.rglob("*")) == []
    finally:
        cluster.remove()


def _kill_children_named(name: str) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            comm = fields[0].split("(", 1)[1]
            ppid = int(fields[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if comm == name and ppid == os.getpid():
            os.kill(int(stat.parent.name), 9)
            return True
    return False


def test_pg_dump_killed_midway_keeps_older_backups(erp_db, tmp_path):
    storage = LocalStorage(tmp_path)
    first = backup_of(erp_db, tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    db = make_config(tmp_path, {"erp": erp_db}).databases[0]
    killed = []
    time.sleep(1.1)  # a new second: a new backup name

    def kill_on_first_progress(message: str) -> None:
        if "MB dumped" in message and not killed:
            killed.append(_kill_children_named("pg_dump"))

    with pytest.raises(BackupFailed, match="pg_dump was killed by signal 9"):
        run_backup(db, storage, log=kill_on_first_progress, progress_seconds=0)
    assert killed == [True]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert backup_checks.checksum(storage, list_backups(storage, "erp")[-1]).passed
    assert list_backups(storage, "erp")[-1].stamp in first.uri


@pytest.fixture
def tiny_disk():
    """A 4 MB tmpfs, as root; skipped where mounting is not allowed."""
    import subprocess
    import tempfile

    mount_point = Path(tempfile.mkdtemp(prefix="ops_test_disk_"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a small tmpfs to fill: {mounted.stderr.strip() or 'not root'}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)
    mount_point.rmdir()


def test_disk_full_fails_in_one_line_and_keeps_older_backups(erp_db, tiny_disk):
    storage = LocalStorage(tiny_disk)
    first = backup_of(erp_db, tiny_disk)
    free = os.statvfs(tiny_disk).f_bavail * os.statvfs(tiny_disk).f_frsize
    (tiny_disk / "filler").write_bytes(b"\0" * (free - 64 * 1024))
    time.sleep(1.1)
    with pytest.raises(BackupFailed, match=r"cannot write .*: No space left on device") as info:
        backup_of(erp_db, tiny_disk)
    assert "\n" not in str(info.value)
    names = sorted(p.name for p in (tiny_disk / "erp").iterdir())
    assert names == sorted([Path(first.uri).name, Path(first.uri).name.replace(".dump.zst", ".manifest.json")])
    assert backup_checks.checksum(storage, list_backups(storage, "erp")[-1]).passed


def test_a_locked_table_fails_the_backup_within_the_lock_timeout(erp_db, tmp_path):
    with connect(erp_db) as locker:
        locker.execute("LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE")  # e.g. a migration
        started = time.monotonic()
        with pytest.raises(BackupFailed, match="lock timeout|could not obtain lock") as info:
            backup_of(erp_db, tmp_path, "timeouts: {lock: 1s}")
        assert time.monotonic() - started < 20
        assert "\n" not in str(info.value)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_backup_job_with_off_site_copy_passes_every_check(erp_db, tmp_path, s3_endpoint, s3_bucket):
    secret_dsn = erp_db + " password=never-shown-pw"
    config = make_config(
        tmp_path, {"erp": secret_dsn},
        s3=f"{{bucket: {s3_bucket}, prefix: prod/, endpoint_url: '{s3_endpoint}', region: us-east-1}}",
    )
    instance = dg.DagsterInstance.ephemeral()
    result = capability_job(build_definitions(config), config, "erp", "backup").execute_in_process(instance=instance)
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations() if e.check_name != "restore_recent"}
    assert checks["offsite_matches"].passed, checks["offsite_matches"].description
    assert all(c.passed for c in checks.values())
    copied = instance.get_latest_materialization_event(dg.AssetKey(["erp", "offsite_copy"])).asset_materialization
    assert copied.metadata["uri"].value.startswith(f"s3://{s3_bucket}/prod/erp/")
    logs = "\n".join(str(record.user_message) + str(record.dagster_event) for record in instance.all_logs(result.run_id))
    assert "never-shown-pw" not in logs
