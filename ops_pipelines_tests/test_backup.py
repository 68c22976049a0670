"""`<db>/backup` against real PostgreSQL: restorable, snapshot-consistent, and all or nothing."""

import datetime as dt
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from ops_pipelines.adapters.cluster import LocalCluster
from ops_pipelines.adapters.postgres import connect
from ops_pipelines.adapters.storage import LocalStorage
from ops_pipelines.core.backups import checks as backup_checks
from ops_pipelines.core.backups.backup import BackupFailed, run_backup
from ops_pipelines.core.backups.catalog import list_backups, newest_complete_stamp, stamp_for
from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines.errors import DatabaseError
from ops_pipelines_tests.helpers import make_config, restore_dump, row_counts


def backup_of(erp_db: str, store: Path, extra: str = ""):
    db = make_config(store, {"erp": erp_db}, extra).databases[0]
    return run_backup(db, LocalStorage(store))


def backup_files(store: Path) -> list[Path]:
    """Every file in the store but the lock files (which stay, empty of meaning, between runs)."""
    return sorted(p for p in store.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


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
        assert (
            conn.execute("SELECT count(*) AS n FROM pg_trigger WHERE tgname = 'orders_touch_updated_at'").fetchone()[
                "n"
            ]
            == 1
        )


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
    result = job.execute_in_process(partition_key="erp", instance=instance)
    assert result.success
    metadata = instance.get_latest_materialization_event(dg.AssetKey("backup")).asset_materialization.metadata
    assert metadata["tables"].value == 10 and metadata["total_rows"].value > 2000
    assert metadata["mb_per_second"].value > 0 and metadata["bytes"].value > 0
    assert (
        metadata["backup_stamp"].value == list_backups(LocalStorage(tmp_path), "erp")[-1].stamp
    )  # what the restore sensor reads
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"backup_fresh", "backup_checksum", "backup_readable", "backup_size_sane", "restore_recent"}
    never_tested = checks.pop("restore_recent")  # runs with every backup: no restore test yet
    assert not never_tested.passed and "ever passed a restore test" in never_tested.description
    assert all(c.passed for c in checks.values()), {k: c.description for k, c in checks.items()}


def test_unreachable_database_leaves_nothing(tmp_path):
    with pytest.raises(DatabaseError, match="cannot connect to ops@127.0.0.1:1/erp"):
        backup_of("postgresql://ops:hunter2@127.0.0.1:1/erp", tmp_path)
    assert backup_files(tmp_path) == []


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
        assert backup_files(tmp_path) == []
    finally:
        cluster.remove()


def _kill_children_named(name: str) -> bool:
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)
            comm = fields[0].split("(", 1)[1]
            ppid = int(fields[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if comm == name and ppid == os.getpid():
            os.kill(int(stat_file.parent.name), 9)
            return True
    return False


def test_pg_dump_killed_midway_keeps_older_backups(erp_db, tmp_path):
    storage = LocalStorage(tmp_path)
    first = backup_of(erp_db, tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    db = make_config(tmp_path, {"erp": erp_db}).databases[0]
    killed = []

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
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
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
    with pytest.raises(BackupFailed, match=r"cannot write .*: No space left on device") as info:
        backup_of(erp_db, tiny_disk)
    assert "\n" not in str(info.value)
    names = sorted(p.name for p in (tiny_disk / "erp").iterdir() if not p.name.startswith("."))
    kept = Path(first.uri).name
    assert names == sorted(
        [kept, kept.replace(".dump.zst", ".manifest.json"), kept.replace(".dump.zst", ".globals.sql")]
    )
    assert backup_checks.checksum(storage, list_backups(storage, "erp")[-1]).passed


def test_a_locked_table_fails_the_backup_within_the_lock_timeout(erp_db, tmp_path):
    with connect(erp_db) as locker:
        locker.execute("LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE")  # e.g. a migration
        started = time.monotonic()
        with pytest.raises(BackupFailed, match="lock timeout|statement timeout|could not obtain lock") as info:
            # rows counted of another table only: the lock is met by pg_dump, whose message is checked
            backup_of(erp_db, tmp_path, "timeouts: {lock: 1s}\nbackup: {count_tables: [public.customers]}")
        assert time.monotonic() - started < 20
        assert "\n" not in str(info.value)
        # the cause, with pg_dump's detail after it, not merely its last stderr line ("detail: Query was: ...")
        # (pg_dump's --lock-wait-timeout works through a statement timeout on its LOCK TABLE)
        assert str(info.value).startswith("pg_dump exited with 1: query failed: ERROR: canceling statement due to")
        assert "(detail: Query was: LOCK TABLE public.orders" in str(info.value)
    assert backup_files(tmp_path) == []


def test_backup_job_with_off_site_copy_passes_every_check(erp_db, tmp_path, s3_endpoint, s3_bucket):
    secret_dsn = erp_db + " password=never-shown-pw"
    config = make_config(
        tmp_path,
        {"erp": secret_dsn},
        s3=f"{{bucket: {s3_bucket}, prefix: prod/, endpoint_url: '{s3_endpoint}', region: us-east-1}}",
    )
    instance = dg.DagsterInstance.ephemeral()
    result = capability_job(build_definitions(config), config, "erp", "backup").execute_in_process(
        partition_key="erp", instance=instance
    )
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations() if e.check_name != "restore_recent"}
    assert checks["offsite_matches"].passed, checks["offsite_matches"].description
    assert all(c.passed for c in checks.values())
    copied = instance.get_latest_materialization_event(dg.AssetKey("offsite_copy")).asset_materialization
    assert copied.metadata["uri"].value.startswith(f"s3://{s3_bucket}/prod/erp/")
    logs = "\n".join(
        str(record.user_message) + str(record.dagster_event) for record in instance.all_logs(result.run_id)
    )
    assert "never-shown-pw" not in logs


# ---------------------------------------------------------------------------- exclusion and files

BACKUP_PROCESS = """
import sys
from ops_pipelines.config import load_config
from ops_pipelines.core.backups.backup import BackupInProgress, run_backup
from ops_pipelines.adapters.storage import LocalStorage
config = load_config(sys.argv[1])
try:
    result = run_backup(config.databases[0], LocalStorage(config.backup_store.local_dir))
except BackupInProgress as exc:
    print("REFUSED", exc)
else:
    print("OK", result.manifest.dump_key)
"""


def start_backup_process(config_path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", BACKUP_PROCESS, str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def backup_waiting_on_a_lock(dsn: str) -> bool:
    with connect(dsn) as conn:
        return (
            conn.execute(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'ops_pipelines/backup' AND wait_event_type = 'Lock'"
            ).fetchone()["n"]
            > 0
        )


@pytest.mark.parametrize("same_store", [True, False], ids=["same store", "two machines"])
def test_two_concurrent_backups_give_one_verified_backup_and_one_refusal(erp_db, tmp_path, write_config, same_store):
    """Two processes (as a CLI run and a scheduled run would be). The first is held inside its dump
    by a table lock, so the second certainly starts while the first runs. With separate stores (two
    machines backing up the same database) the advisory lock on the source refuses the second."""
    first_store = tmp_path / "a"
    second_store = first_store if same_store else tmp_path / "b"
    first_config = write_config(make_yaml(first_store, erp_db, "timeouts: {lock: 2min}"), "first.yaml")
    second_config = write_config(make_yaml(second_store, erp_db, "timeouts: {lock: 2min}"), "second.yaml")
    with connect(erp_db) as locker:
        locker.execute("LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE")
        first = start_backup_process(first_config)
        wait_until(lambda: backup_waiting_on_a_lock(erp_db), "the first backup to wait in pg_dump")
        second = start_backup_process(second_config)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        assert out.startswith("REFUSED refused:"), out
        if same_store:
            assert "backup of erp is already running (pid" in out
        else:
            assert "another backup of erp is running: session" in out and "ops_pipelines/backup" in out
        locker.rollback()  # the first one goes on
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0 and out.startswith("OK erp/"), (out, err)
    storage = LocalStorage(first_store)
    entries = list_backups(storage, "erp")
    assert len(entries) == 1 and entries[0].complete
    assert backup_checks.checksum(storage, entries[0]).passed
    assert backup_checks.readable(storage, entries[0]).passed
    assert not list(first_store.rglob("*.partial"))
    if not same_store:
        assert backup_files(second_store) == []


def make_yaml(store: Path, dsn: str, extra: str = "") -> str:
    return f'backup_store: {{local_dir: {store}}}\ndatabases:\n  - name: erp\n    dsn: "{dsn}"\n    {extra}\n'


def test_a_backup_never_takes_a_stamp_that_is_already_used(erp_db, tmp_path):
    # Backups of the current and the next two seconds exist already (as when two start in one second).
    now = dt.datetime.now(dt.UTC)
    taken = [stamp_for(now + dt.timedelta(seconds=i)) for i in range(3)]
    for stamp in taken:
        (tmp_path / "erp").mkdir(exist_ok=True)
        (tmp_path / "erp" / f"{stamp}.dump.zst").write_bytes(b"an earlier backup")
    result = backup_of(erp_db, tmp_path, "backup: {count_tables: [public.orders]}")
    assert result.manifest.dump_key.split("/")[1][:16] > max(taken)
    assert all((tmp_path / "erp" / f"{stamp}.dump.zst").read_bytes() == b"an earlier backup" for stamp in taken)
    assert backup_checks.checksum(LocalStorage(tmp_path), list_backups(LocalStorage(tmp_path), "erp")[-1]).passed


def test_only_partial_files_whose_writer_is_gone_are_removed(erp_db, tmp_path):
    folder = tmp_path / "erp"
    folder.mkdir()
    abandoned = folder / ".20260101T000000Z.dump.zst.123-dead.partial"  # its writer was SIGKILLed
    abandoned.write_bytes(b"half a dump")
    live = folder / ".20260101T000001Z.dump.zst.456-live.partial"  # another run still writing it
    live.write_bytes(b"being written")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, signal, sys; f = open(sys.argv[1], 'rb'); fcntl.flock(f, fcntl.LOCK_EX);"
            " print('locked', flush=True); signal.pause()",
            str(live),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = backup_of(erp_db, tmp_path)
        assert result.partials_removed == [abandoned.name]
        assert not abandoned.exists() and live.exists()
    finally:
        holder.kill()
        holder.wait()


def test_backup_files_are_private_whatever_the_umask(erp_db, tmp_path):
    old = os.umask(0o022)
    try:
        result = backup_of(erp_db, tmp_path / "store")
    finally:
        os.umask(old)
    dump = Path(result.uri)
    manifest = dump.with_name(dump.name.replace(".dump.zst", ".manifest.json"))
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600 and stat.S_IMODE(manifest.stat().st_mode) == 0o600
    assert stat.S_IMODE(dump.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "store").stat().st_mode) == 0o700


def test_every_libpq_parameter_reaches_pg_dump_and_the_password_stays_off_its_command_line(erp_db, tmp_path):
    dsn = (
        erp_db + " keepalives=1 keepalives_idle=30 channel_binding=disable target_session_attrs=any password=unused-pw"
    )
    seen = []

    def watch(message: str) -> None:
        seen.extend(cmdline for cmdline in _pg_dump_command_lines())

    db = make_config(tmp_path, {"erp": dsn}).databases[0]
    result = run_backup(db, LocalStorage(tmp_path), log=watch, progress_seconds=0)
    assert result.manifest.total_rows > 0
    assert seen and all("keepalives=1" in line and "unused-pw" not in line for line in seen)


def _pg_dump_command_lines() -> list[str]:
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"pg_dump"):
            lines.append(b" ".join(argv).decode("utf-8", "replace"))
    return lines


def test_checks_warn_about_a_newer_dump_without_manifest_and_escape_table_names(erp_db, tmp_path):
    with connect(erp_db, autocommit=True) as conn:
        conn.execute('CREATE TABLE "<img src=x onerror=alert(1)>" (id int PRIMARY KEY)')
        conn.execute('INSERT INTO "<img src=x onerror=alert(1)>" SELECT generate_series(1, 5)')
    config = make_config(tmp_path, {"erp": erp_db})
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    result = capability_job(defs, config, "erp", "backup").execute_in_process(partition_key="erp", instance=instance)
    assert result.success
    summary = (
        instance.get_latest_materialization_event(dg.AssetKey("backup")).asset_materialization.metadata["summary"].value
    )
    assert "\\<img src=x onerror=alert(1)\\>" in summary
    assert re.search(r"(?<!\\)[<>]", summary) is None  # every angle bracket escaped: text, never HTML

    orphan = tmp_path / "erp" / "29990101T000000Z.dump.zst"  # a dump whose backup never wrote its manifest
    orphan.write_bytes(b"interrupted")
    checks = capability_job(defs, config, "erp", "backup").execute_in_process(partition_key="erp", instance=instance)
    assert checks.success  # a warning does not block
    complete = [e for e in list_backups(LocalStorage(tmp_path), "erp") if e.complete][-1]
    evaluations = {e.check_name: e for e in checks.get_asset_check_evaluations()}
    for evaluation in (evaluations["backup_fresh"], evaluations["backup_checksum"]):
        assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
        assert "29990101T000000Z has no manifest" in evaluation.description
        assert f"judged {complete.stamp}" in evaluation.description
