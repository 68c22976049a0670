"""`ops-pipelines recover` and `backups` against real PostgreSQL: recovery into a new database with
exact counts, a refusal that leaves an existing target identical, `--replace` keeping the old one,
and a kill during the restore that leaves the target as it was (the next run cleans up)."""

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from ops_pipelines.adapters.postgres import connect, with_dbname
from ops_pipelines.adapters.storage.s3 import S3Storage
from ops_pipelines.automation.metrics_textfile import gather_figures
from ops_pipelines.cli import main
from ops_pipelines.config import load_config
from ops_pipelines.core.backups.proof import store_proof
from ops_pipelines.core.prometheus import render
from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines_tests.helpers import row_counts

TABLES = ["public.orders", "public.order_lines", "public.lots", "public.users", "auth.login_attempts"]


@pytest.fixture(scope="module")
def prepared(pg_server, erp_template, tmp_path_factory):
    """Once for the module: a copy of the ERP database and a config file naming it, with two backups,
    the older one proven by a restore test. Tests restore into targets of their own."""
    from ops_pipelines_tests.conftest import create_database, drop_database

    tmp_path = tmp_path_factory.mktemp("recover")
    name = create_database(pg_server, template=erp_template)
    erp_db = with_dbname(pg_server, name)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"timezone: UTC\nbackup_store: {{local_dir: {tmp_path / 'store'}}}\n"
        f'databases:\n  - name: erp\n    dsn: "{erp_db}"\n'
    )
    config = load_config(path)
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    backup = capability_job(defs, config, "erp", "backup")
    assert backup.execute_in_process(partition_key="erp", instance=instance, asset_selection=[dg.AssetKey("backup")])
    restore_test = capability_job(defs, config, "erp", "restore_test")
    assert restore_test.execute_in_process(partition_key="erp", instance=instance)
    assert backup.execute_in_process(partition_key="erp", instance=instance, asset_selection=[dg.AssetKey("backup")])
    yield erp_db, path
    drop_database(pg_server, name)


@pytest.fixture
def backed_up(prepared, monkeypatch):
    erp_db, path = prepared
    monkeypatch.setenv("OPS_PIPELINES_CONFIG", str(path))
    targets: list[str] = []
    yield erp_db, targets
    with connect(with_dbname(erp_db, "postgres"), autocommit=True) as conn:
        for name in conn.execute("SELECT datname FROM pg_database").fetchall():
            if any(name["datname"].startswith(t) for t in targets):
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name["datname"])))


def new_target(targets: list[str]) -> str:
    name = f"ops_test_rec_{uuid.uuid4().hex[:8]}"
    targets.append(name)
    return name


def fingerprint(dsn: str) -> tuple:
    """Row counts and a checksum of one table's content: 'identical' means both."""
    with connect(dsn) as conn:
        digest = conn.execute("SELECT md5(string_agg(l::text, ',' ORDER BY l.id)) AS h FROM public.lots AS l")
        return tuple(row_counts(dsn, TABLES).items()), digest.fetchone()["h"]


def test_backups_lists_verified_and_unverified(backed_up, capsys):
    assert main(["backups", "erp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2 backups of erp in ")
    assert "complete" in lines[1] and "verified" in lines[2]  # newest first: only the older one was tested
    assert "MB" in lines[1] and "h old" in lines[1]


def test_recover_into_a_new_database_restores_the_newest_proven_backup_exactly(backed_up, capsys):
    erp_db, targets = backed_up
    target = new_target(targets)
    assert main(["recover", "erp", "--target", target]) == 0
    out = capsys.readouterr().out
    assert f"renamed to {target}" in out and "rows verified" in out
    assert row_counts(with_dbname(erp_db, target), TABLES) == row_counts(erp_db, TABLES)
    with connect(with_dbname(erp_db, "postgres")) as conn:  # nothing left behind
        left = conn.execute("SELECT count(*) AS n FROM pg_database WHERE datname = %s", (target + "__restoring",))
        assert left.fetchone()["n"] == 0


def test_an_existing_target_is_refused_untouched_and_replace_keeps_the_old_one(backed_up, capsys):
    erp_db, targets = backed_up
    target = new_target(targets)
    assert main(["recover", "erp", "--target", target]) == 0
    target_dsn = with_dbname(erp_db, target)
    with connect(target_dsn, autocommit=True) as conn:  # the live database moves on after the backup
        conn.execute("DELETE FROM public.lots WHERE id % 7 = 0")
    before = fingerprint(target_dsn)
    capsys.readouterr()

    assert main(["recover", "erp", "--target", target]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"ops-pipelines: error: database {target} exists and holds tables: pass --replace to swap it (the old one "
        "is kept), or choose another target"
    )
    assert fingerprint(target_dsn) == before

    session = connect(target_dsn)  # a client still connected: --replace ends it
    session.__enter__()
    try:
        assert main(["recover", "erp", "--target", target, "--replace"]) == 0
    finally:
        try:
            session.__exit__(None, None, None)
        except Exception:  # noqa: BLE001 - its connection was terminated, as intended
            pass
    out = capsys.readouterr().out
    replaced = out.split('DROP DATABASE "', 1)[1].split('"', 1)[0]
    assert replaced.startswith(f"{target}__replaced_")
    assert fingerprint(with_dbname(erp_db, replaced)) == before  # the old one is kept, as it was
    assert row_counts(target_dsn, TABLES) == row_counts(erp_db, TABLES)  # the backup is in place


def test_a_kill_during_the_restore_leaves_the_target_as_it_was(backed_up, tmp_path):
    erp_db, targets = backed_up
    target = new_target(targets)
    assert main(["recover", "erp", "--target", target]) == 0
    target_dsn = with_dbname(erp_db, target)
    with connect(target_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM public.lots WHERE id % 5 = 0")
        before = fingerprint(target_dsn)
        process = subprocess.Popen(
            [sys.executable, "-m", "ops_pipelines.cli", "recover", "erp", "--target", target, "--replace"],
            env=os.environ,
            stdout=(tmp_path / "recover.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # until pg_restore writes into <target>__restoring
                busy = conn.execute(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = %s AND application_name LIKE %s",
                    (target + "__restoring", "ops_pipelines/recover%"),
                ).fetchone()["n"]
                if busy:
                    break
                assert process.poll() is None, (tmp_path / "recover.log").read_text()
                time.sleep(0.05)
            else:
                pytest.fail("pg_restore never started")
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    assert fingerprint(target_dsn) == before  # untouched
    assert main(["recover", "erp", "--target", target, "--replace"]) == 0  # drops the leftover, then recovers
    assert row_counts(target_dsn, TABLES) == row_counts(erp_db, TABLES)


def test_a_wrong_stamp_and_an_unknown_database_are_one_line_errors(backed_up, capsys):
    _, targets = backed_up
    assert main(["recover", "erp", "--target", new_target(targets), "--backup", "20990101T000000Z"]) == 1
    assert capsys.readouterr().err.startswith("ops-pipelines: error: no backup 20990101T000000Z (the newest: ")
    assert main(["backups", "nope"]) == 1
    assert capsys.readouterr().err.strip().endswith("(it has: erp)")


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "ops-pipelines"
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "recover" in result.stdout and "backups" in result.stdout


def test_the_recover_job_does_the_same_from_the_launchpad(backed_up):
    erp_db, targets = backed_up
    target = new_target(targets)
    config = load_config(Path(os.environ["OPS_PIPELINES_CONFIG"]))
    job = build_definitions(config).resolve_job_def("recover")
    result = job.execute_in_process(
        partition_key="erp",  # the database: its runs queue behind each other, a recovery too
        run_config={"ops": {"recover_database": {"config": {"target": target}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    [step] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    figures = step.event_specific_data.metadata
    assert figures["target"].value == target and figures["rows_checked"].value > 0
    assert row_counts(with_dbname(erp_db, target), TABLES) == row_counts(erp_db, TABLES)
    refused = job.execute_in_process(
        partition_key="erp",
        run_config={"ops": {"recover_database": {"config": {"target": target}}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not refused.success  # an existing target: the same refusal as the command line


# ---------------------------------------------------------------------------- the off-site drill


def test_the_offsite_restore_test_proves_the_s3_copy_and_fails_on_a_tampered_object(
    erp_db, tmp_path, s3_endpoint, s3_bucket, monkeypatch
):
    import boto3

    from ops_pipelines_tests.helpers import make_config

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config = make_config(
        tmp_path / "store", {"erp": erp_db}, s3=f'{{bucket: {s3_bucket}, endpoint_url: "{s3_endpoint}"}}'
    )
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    assert capability_job(defs, config, "erp", "backup").execute_in_process(partition_key="erp", instance=instance)
    drill = capability_job(defs, config, "erp", "offsite_restore_test")
    passed = drill.execute_in_process(partition_key="erp", instance=instance)
    assert passed.success
    metadata = instance.get_latest_materialization_event(
        dg.AssetKey("offsite_restore_test")
    ).asset_materialization.metadata
    assert metadata["source"].value.startswith(f"s3://{s3_bucket}/erp/") and metadata["passed"].value
    assert metadata["tables_checked"].value == 10
    assert {c.check_name: c.passed for c in passed.get_asset_check_evaluations()} == {"offsite_restorable": True}
    # the drill in the textfile's gauges and in the weekly report
    figures = gather_figures(config, instance, [])
    drill_at = instance.get_latest_materialization_event(dg.AssetKey("offsite_restore_test")).timestamp
    proven_at = figures[0].offsite_verified_timestamp  # when the drill's evidence says it finished
    assert proven_at is not None and 0 <= drill_at - proven_at < 5
    assert f'ops_pipelines_offsite_restore_verified_last_timestamp_seconds{{database="erp"}} {round(proven_at, 3)}' in (
        render(figures, 0)
    )
    assert defs.resolve_job_def("maintenance_report_job").execute_in_process(instance=instance).success
    report = instance.get_latest_materialization_event(dg.AssetKey("maintenance_report")).asset_materialization
    assert f"Newest off-site drill: backup {metadata['backup'].value} read from S3, restored and verified" in (
        report.metadata["report"].value
    )

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    key = metadata["source"].value.split(f"s3://{s3_bucket}/", 1)[1]
    stored = s3.get_object(Bucket=s3_bucket, Key=key)
    data = bytearray(stored["Body"].read())
    data[len(data) // 2] ^= 0x01  # one bit flipped in S3; the object's sha256 metadata still claims the original
    s3.put_object(Bucket=s3_bucket, Key=key, Body=bytes(data), Metadata=stored["Metadata"])
    failed = drill.execute_in_process(partition_key="erp", instance=instance, raise_on_error=False)
    assert not failed.success
    cause = failed.get_step_failure_events()[0].step_failure_data.error.message
    assert "erp: off-site backup" in cause and "not restored" in cause
    # C3: the failed drill withdrew the copy's proof: the gauge, the proof and the report say so
    s3_store = S3Storage(s3_bucket, "", endpoint_url=s3_endpoint, region="us-east-1")
    assert store_proof(s3_store, "erp") is None
    assert gather_figures(config, instance, [])[0].offsite_verified_timestamp == 0
    assert defs.resolve_job_def("maintenance_report_job").execute_in_process(instance=instance).success
    report = instance.get_latest_materialization_event(dg.AssetKey("maintenance_report")).asset_materialization
    assert "No off-site (S3) backup of this database has passed the drill yet." in report.metadata["report"].value


def test_the_offsite_drill_sensor_runs_the_drill_after_every_nth_copy(tmp_path):
    """Copies counted per database from the sensor's first tick; a drill (however started) counts anew."""
    from ops_pipelines_tests.helpers import make_config

    config = make_config(
        tmp_path,
        {"erp": "host=unused", "shop": "host=unused"},
        extra="restore_test: {offsite_every_backups: 3}",
        s3='{bucket: unused, endpoint_url: "http://127.0.0.1:9"}',
    )
    defs = build_definitions(config)
    sensor = defs.resolve_sensor_def("offsite_drill_sensor")
    instance = dg.DagsterInstance.ephemeral()
    cursor = None

    def copied(database: str, stamp: str) -> None:
        instance.report_runless_asset_event(
            dg.AssetMaterialization("offsite_copy", partition=database, metadata={"backup": stamp})
        )

    def tick():
        nonlocal cursor
        with dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor) as context:
            result = sensor(context)
            cursor = context.cursor
        return [] if isinstance(result, dg.SkipReason) else [(r.partition_key, r.run_key) for r in result]

    copied("erp", "20261101T020000Z")  # before the first tick: not counted
    assert tick() == []
    for day in (2, 3):
        copied("erp", f"202611{day:02}T020000Z")
        copied("shop", f"202611{day:02}T020000Z")
    assert tick() == []
    copied("erp", "20261104T020000Z")
    assert tick() == [("erp", "offsite-drill:erp:20261104T020000Z")]  # the third since the first tick
    instance.report_runless_asset_event(dg.AssetMaterialization("offsite_restore_test", partition="shop"))
    copied("shop", "20261104T020000Z")  # shop's drill passed (the monthly one): it counts from 1 again
    assert tick() == []
    for day in (5, 6):
        copied("erp", f"202611{day:02}T020000Z")
        copied("shop", f"202611{day:02}T020000Z")
    assert tick() == [("shop", "offsite-drill:shop:20261106T020000Z")]
    copied("erp", "20261107T020000Z")
    assert tick() == [("erp", "offsite-drill:erp:20261107T020000Z")]


def test_the_offsite_drill_sensor_is_absent_when_every_database_turns_it_off(tmp_path):
    from ops_pipelines_tests.helpers import make_config

    config = make_config(
        tmp_path,
        {"erp": "host=unused"},
        extra="restore_test: {offsite_every_backups: 0}",
        s3='{bucket: unused, endpoint_url: "http://127.0.0.1:9"}',
    )
    names = {s.name for s in build_definitions(config).sensors}
    assert "offsite_drill_sensor" not in names and "restore_after_backup_sensor" in names


def allows_connections(server_dsn: str, name: str) -> bool | None:
    with connect(server_dsn) as conn:
        row = conn.execute("SELECT datallowconn FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return None if row is None else row["datallowconn"]


def databases_like(server_dsn: str, prefix: str) -> list[str]:
    with connect(server_dsn) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY 1", (prefix,))
        return [r["datname"] for r in rows.fetchall()]


def test_a_retried_replace_keeps_each_old_copy_and_leaves_the_target_open(backed_up, capsys):
    """C5a: the kept copy's name is the swap's time, so a retry with the same backup swaps again."""
    erp_db, targets = backed_up
    server = with_dbname(erp_db, "postgres")
    target = new_target(targets)
    assert main(["recover", "erp", "--target", target]) == 0
    assert main(["recover", "erp", "--target", target, "--replace"]) == 0
    assert main(["recover", "erp", "--target", target, "--replace"]) == 0, capsys.readouterr().err
    kept = [n for n in databases_like(server, target) if n != target]
    assert len(kept) == 2 and all("__replaced_" in n for n in kept)
    assert allows_connections(server, target) is True
    assert all(allows_connections(server, n) is True for n in kept)
    assert row_counts(with_dbname(erp_db, target), TABLES) == row_counts(erp_db, TABLES)


def test_names_are_measured_in_bytes_and_refused_before_anything_changes(backed_up, capsys):
    """C5c: 20 characters of 3 bytes each: `<target>__restoring` would be cut by PostgreSQL."""
    erp_db, targets = backed_up
    target = "日" * 20
    targets.append(target)
    assert main(["recover", "erp", "--target", target]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ops-pipelines: error: target name '{target}' is 60 bytes in UTF-8") and "63" in err
    assert databases_like(with_dbname(erp_db, "postgres"), "日") == []


def test_a_second_recovery_into_the_same_target_is_refused_naming_the_first(backed_up, tmp_path, capsys):
    """M1: the first holds an advisory lock for its whole length; the second changes nothing."""
    erp_db, targets = backed_up
    target = new_target(targets)
    server = with_dbname(erp_db, "postgres")
    with connect(server, autocommit=True) as holder:  # as a running recovery's admin session holds it
        holder.execute("SELECT pg_advisory_lock(hashtext('ops_pipelines/recover'), hashtext(%s))", (target,))
        pid = holder.execute("SELECT pg_backend_pid() AS p").fetchone()["p"]
        assert main(["recover", "erp", "--target", target]) == 1
        err = capsys.readouterr().err.strip()
        assert f"another recovery into {target} is running" in err and f"pid {pid}" in err
        assert databases_like(server, target) == []  # no __restoring was created, none dropped
    assert main(["recover", "erp", "--target", target]) == 0  # the lock died with its session


def test_a_kill_while_the_target_is_closed_is_repaired_by_the_next_command(backed_up, tmp_path, capsys):
    """C5b: a client's backend held by SIGSTOP cannot end, so the swap waits with the target closed;
    kill -9 then. The target is left closed, with the record of who closed it; `backups` re-opens it."""
    erp_db, targets = backed_up
    server = with_dbname(erp_db, "postgres")
    target = new_target(targets)
    assert main(["recover", "erp", "--target", target]) == 0
    target_dsn = with_dbname(erp_db, target)
    before = fingerprint(target_dsn)
    session = connect(target_dsn)
    client = session.__enter__()
    backend = client.execute("SELECT pg_backend_pid() AS p").fetchone()["p"]
    os.kill(backend, signal.SIGSTOP)
    process = subprocess.Popen(
        [sys.executable, "-m", "ops_pipelines.cli", "recover", "erp", "--target", target, "--replace"],
        env=os.environ,
        stdout=(tmp_path / "recover.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while allows_connections(server, target) is not False:  # until the swap has closed the target
            assert process.poll() is None, (tmp_path / "recover.log").read_text()
            assert time.monotonic() < deadline, "the swap never closed the target"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        assert allows_connections(server, target) is False  # what a kill leaves: closed, with its record
        assert target + "__restoring" in databases_like(server, target)
    finally:
        os.kill(backend, signal.SIGCONT)  # it now ends (it was told to) or goes on
        with contextlib.suppress(Exception):
            session.__exit__(None, None, None)
    capsys.readouterr()
    assert main(["backups", "erp"]) == 0
    out = capsys.readouterr().out
    assert f"re-opened {target} to connections: an interrupted recovery had closed it" in out
    assert f"dropped {target}__restoring" in out
    assert allows_connections(server, target) is True and databases_like(server, target) == [target]
    assert fingerprint(target_dsn) == before  # the live database as it was
    assert main(["recover", "erp", "--target", target, "--replace"]) == 0  # and a retry now swaps


def test_a_kept_copy_left_closed_just_after_the_swap_is_reopened_by_backups(backed_up, capsys):
    """A kill between the swap's commit and re-opening the kept copy leaves `<target>__replaced_<time>`
    closed (the target itself is the restored database, open). `backups` re-opens it; a database of
    another name that the DBA closed is left closed."""
    erp_db, targets = backed_up
    server = with_dbname(erp_db, "postgres")
    target = new_target(targets)
    kept, other = f"{target}__replaced_20261204T000000Z", f"{target}__replaced_by_hand"
    with connect(server, autocommit=True) as conn:
        for name in (kept, other):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
    capsys.readouterr()
    assert main(["backups", "erp"]) == 0
    assert f"re-opened {kept} (a kept copy) to connections" in capsys.readouterr().out
    assert allows_connections(server, kept) is True
    assert allows_connections(server, other) is False  # not a name a recovery gives: not ours to open


def test_planted_and_swapped_s3_objects_are_never_believed(
    erp_db, tmp_path, s3_endpoint, s3_bucket, monkeypatch, capsys
):
    """C1 and C2 with the real drill and CLI: a pair planted under a future stamp, and one under a
    past stamp this instance never took, are skipped by the drill; the newest genuine copy's dump
    overwritten and its manifest swapped for the older backup's is refused by the drill (failing,
    its proof withdrawn) and by `recover --from s3`, which never restores the other backup's data."""
    import hashlib

    from ops_pipelines.core.backups.catalog import list_backups, stamp_for
    from ops_pipelines_tests.helpers import make_config

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3_yaml = f'{{bucket: {s3_bucket}, endpoint_url: "{s3_endpoint}"}}'
    config = make_config(tmp_path / "store", {"erp": erp_db}, s3=s3_yaml)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"timezone: UTC\nbackup_store: {{local_dir: {tmp_path / 'store'}, s3: {s3_yaml}}}\ndatabases:\n"
        f'  - name: erp\n    dsn: "{erp_db}"\n'
    )
    monkeypatch.setenv("OPS_PIPELINES_CONFIG", str(path))
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    backup = capability_job(defs, config, "erp", "backup")
    drill = capability_job(defs, config, "erp", "offsite_restore_test")
    copy_only = [dg.AssetKey("backup"), dg.AssetKey("offsite_copy")]  # no retention: it would keep one a day
    assert backup.execute_in_process(partition_key="erp", instance=instance, asset_selection=copy_only).success
    time.sleep(1.1)  # stamps have one-second resolution
    assert backup.execute_in_process(partition_key="erp", instance=instance, asset_selection=copy_only).success
    s3 = S3Storage(s3_bucket, "", endpoint_url=s3_endpoint, region="us-east-1")
    older, newest = [e.stamp for e in list_backups(s3, "erp") if e.complete]

    junk = os.urandom(200_000)
    now = dt.datetime.now(dt.UTC)
    future, past = stamp_for(now + dt.timedelta(hours=20)), stamp_for(now - dt.timedelta(hours=1))
    for stamp in (future, past):  # random bytes with a matching sha256, beside a copy of a real manifest
        with s3.open_write(f"erp/{stamp}.dump.zst", sha256=hashlib.sha256(junk).hexdigest()) as out:
            out.write(junk)
        s3.write_bytes(f"erp/{stamp}.manifest.json", s3.read_bytes(f"erp/{newest}.manifest.json"))
    passed = drill.execute_in_process(partition_key="erp", instance=instance)
    assert passed.success
    assert (
        instance.get_latest_materialization_event(dg.AssetKey("offsite_restore_test"))
        .asset_materialization.metadata["backup"]
        .value
        == newest
    )
    assert main(["backups", "erp", "--from", "s3"]) == 0
    listing = capsys.readouterr().out
    assert f"{future}  REFUSED" in listing and "in the future" in listing
    assert f"{newest}  verified" in listing

    # C2: the newest copy's dump overwritten, its manifest replaced by the older backup's
    s3.write_bytes(f"erp/{newest}.dump.zst", junk)
    s3.write_bytes(f"erp/{newest}.manifest.json", s3.read_bytes(f"erp/{older}.manifest.json"))
    failed = drill.execute_in_process(partition_key="erp", instance=instance, raise_on_error=False)
    assert not failed.success
    cause = failed.get_step_failure_events()[0].step_failure_data.error.message
    assert f"off-site backup {newest} failed" in cause and "refused" in cause
    assert store_proof(s3, "erp") is None  # the drill's earlier proof of it is withdrawn
    target = f"ops_test_c2_{uuid.uuid4().hex[:8]}"
    capsys.readouterr()
    assert main(["recover", "erp", "--from", "s3", "--backup", newest, "--target", target]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("ops-pipelines: error: ") and "refused" in err and "target untouched" in err
    with connect(with_dbname(erp_db, "postgres")) as conn:
        assert (
            conn.execute("SELECT count(*) AS n FROM pg_database WHERE datname LIKE %s", (target + "%",)).fetchone()["n"]
            == 0
        )


def test_the_recover_job_refuses_a_password_in_its_launchpad_and_expands_variables(backed_up, monkeypatch):
    """M7: Dagster keeps the launchpad's config in its run storage (and the UI): a password typed there
    is refused before anything runs; `${VAR}` is expanded in the run. m1: an unknown partition is one line."""
    from ops_pipelines.config import load_config_from_env

    erp_db, targets = backed_up
    config = load_config_from_env()
    defs = build_definitions(config)
    job = defs.resolve_job_def("recover")
    instance = dg.DagsterInstance.ephemeral()
    target = new_target(targets)

    def run(target_dsn: str, partition: str = "erp"):
        op_config = {"target": target, "target_dsn": target_dsn}
        return job.execute_in_process(
            run_config={"ops": {"recover_database": {"config": op_config}}},
            partition_key=partition,
            instance=instance,
            raise_on_error=False,
        )

    refused = run(erp_db + " password=hunter2")
    assert not refused.success
    cause = refused.get_step_failure_events()[0].step_failure_data.error.message
    assert "target_dsn holds a password" in cause and "hunter2" not in cause
    assert databases_like(with_dbname(erp_db, "postgres"), target) == []

    monkeypatch.setenv("OPS_TEST_TARGET_SERVER", erp_db)
    assert run("${OPS_TEST_TARGET_SERVER}").success
    assert row_counts(with_dbname(erp_db, target), TABLES) == row_counts(erp_db, TABLES)
