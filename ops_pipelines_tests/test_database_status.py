"""`database_status`: one database's answer on one page, recorded by a sensor when it changes."""

import datetime as dt

import dagster as dg

from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines_tests.helpers import make_config


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    sensor = defs.resolve_sensor_def("database_status_sensor")
    with dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor) as context:
        return sensor.evaluate_tick(context)


def latest_status(instance: dg.DagsterInstance, database: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("database_status"), asset_partitions=[database]), limit=1
    ).records
    return records[0].asset_materialization.metadata if records else None


def test_status_names_the_newest_backup_the_proven_one_and_failing_checks_per_database(tmp_path, erp_db):
    config = make_config(tmp_path, {"erp": erp_db, "mes": "host=127.0.0.1 port=1 dbname=mes connect_timeout=1"})
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()

    first = tick(defs, instance, None)  # nothing yet: each database is recorded once, with no backup
    assert sorted(e.partition for e in first.asset_events) == ["erp", "mes"]
    for event in first.asset_events:
        instance.report_runless_asset_event(event)
    assert latest_status(instance, "erp")["newest_backup"].value == "none"
    quiet = tick(defs, instance, first.cursor)
    assert quiet.asset_events == [] and "no change" in quiet.skip_message

    backup = capability_job(defs, config, "erp", "backup").execute_in_process(partition_key="erp", instance=instance)
    assert backup.success  # its restore_recent fails: no restore test yet
    after_backup = tick(defs, instance, quiet.cursor)
    assert [e.partition for e in after_backup.asset_events] == ["erp"]  # mes did not change
    for event in after_backup.asset_events:
        instance.report_runless_asset_event(event)
    status = latest_status(instance, "erp")
    stamp = status["newest_backup"].value
    assert stamp != "none" and status["newest_backup_proven"].value == "none"
    assert status["failing_checks"].value == 1 and "restore_test:restore_recent" in status["summary"].value

    restore = capability_job(defs, config, "erp", "restore_test").execute_in_process(
        partition_key="erp", instance=instance
    )
    assert restore.success  # it evaluates restore_recent again: now it passes
    after_restore = tick(defs, instance, after_backup.cursor)
    for event in after_restore.asset_events:
        instance.report_runless_asset_event(event)
    status = latest_status(instance, "erp")
    assert status["newest_backup_proven"].value == stamp and status["newest_is_proven"].value
    assert status["restore_seconds"].value > 0 and status["failing_checks"].value == 0
    assert "No check fails" in status["summary"].value
    assert latest_status(instance, "mes")["newest_backup"].value == "none"


def test_a_test_of_an_older_backup_never_makes_the_newest_look_unproven(tmp_path, erp_db):
    """Two restore tests, of the newest backup and of an older (damaged) one: the recovery view still
    calls the newest proven; the older one's failure is recorded as a warning about that backup."""
    from ops_pipelines.adapters.storage import LocalStorage
    from ops_pipelines.core.backups.catalog import list_backups

    config = make_config(tmp_path, {"erp": erp_db})
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    for _ in range(2):  # the backup asset alone: retention would keep one backup a day
        backup = capability_job(defs, config, "erp", "backup")
        assert backup.execute_in_process(
            partition_key="erp", instance=instance, asset_selection=[dg.AssetKey("backup")]
        ).success
    storage = LocalStorage(config.backup_store.local_dir)
    older, newest = (e.stamp for e in list_backups(storage, "erp") if e.complete)
    restore = capability_job(defs, config, "erp", "restore_test")
    assert restore.execute_in_process(partition_key="erp", instance=instance).success  # the newest

    dump = storage.path(next(e for e in list_backups(storage, "erp") if e.stamp == older).dump.key)
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01  # the older backup is damaged on disk
    dump.write_bytes(bytes(data))
    operator_test = restore.execute_in_process(
        partition_key="erp", instance=instance, run_config={"ops": {"restore_test": {"config": {"backup": older}}}}
    )
    assert operator_test.success  # a test of an older backup answers for that backup only
    verified = {c.check_name: c for c in operator_test.get_asset_check_evaluations()}["restore_verified"]
    assert not verified.passed and verified.severity == dg.AssetCheckSeverity.WARN
    assert verified.description.startswith(f"an older backup (the newest is {newest}): backup {older}: ")
    assert "damaged, not restored" in verified.description
    tested = instance.get_latest_materialization_event(dg.AssetKey("restore_test")).asset_materialization.metadata
    assert tested["backup"].value == older and not tested["passed"].value
    assert tested["tested"].value == f"an older backup (the newest is {newest})"

    for event in tick(defs, instance, None).asset_events:
        instance.report_runless_asset_event(event)
    status = latest_status(instance, "erp")
    assert status["newest_backup"].value == newest and status["newest_backup_proven"].value == newest
    assert status["newest_is_proven"].value is True
    assert f"{newest}, tested" in status["summary"].value and "(the newest)" in status["summary"].value


def test_a_failed_verification_of_the_newest_backup_shows_failed_not_materialized(tmp_path, erp_db):
    from ops_pipelines.adapters.storage import LocalStorage
    from ops_pipelines.core.backups.catalog import list_backups

    config = make_config(tmp_path, {"erp": erp_db})
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    assert capability_job(defs, config, "erp", "backup").execute_in_process(partition_key="erp", instance=instance)
    storage = LocalStorage(config.backup_store.local_dir)
    entry = list_backups(storage, "erp")[-1]
    dump = storage.path(entry.dump.key)
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])  # truncated

    result = capability_job(defs, config, "erp", "restore_test").execute_in_process(
        partition_key="erp", instance=instance, raise_on_error=False
    )
    assert not result.success
    verified = {c.check_name: c for c in result.get_asset_check_evaluations()}["restore_verified"]
    assert not verified.passed and verified.severity == dg.AssetCheckSeverity.ERROR
    failure = result.get_step_failure_events()[0].step_failure_data
    assert failure.error.message.startswith("dagster._core.definitions.events.Failure: erp: verification failed: ")
    assert failure.user_failure_data.metadata["passed"].value is False
    assert instance.get_latest_materialization_event(dg.AssetKey("restore_test")) is None
    partitions = defs.resolve_assets_def("restore_test").partitions_def
    status = instance.get_status_by_partition(dg.AssetKey("restore_test"), ["erp"], partitions)
    assert status == {"erp": dg.AssetPartitionStatus.FAILED}  # red in the catalog, never "Materialized"


def test_a_failed_restore_test_withdraws_the_proof_everywhere(tmp_path, erp_db, monkeypatch, capsys):
    """C4: two backups, both proven; then 8 bytes of the newest dump are damaged and restore_test
    fails. The newest is no longer called verified or proven anywhere: the CLI, database_status,
    restore_recent (which names it) and recover (which takes the older one and says why)."""
    from ops_pipelines.adapters.storage import LocalStorage
    from ops_pipelines.cli import main
    from ops_pipelines.core.backups.catalog import complete_backups
    from ops_pipelines.core.backups.proof import newest_proof
    from ops_pipelines.core.backups.recovery_status import recovery_status

    path = tmp_path / "config.yaml"
    config = make_config(tmp_path / "store", {"erp": erp_db})
    path.write_text(
        f"timezone: UTC\nbackup_store: {{local_dir: {tmp_path / 'store'}}}\ndatabases:\n"
        f'  - name: erp\n    dsn: "{erp_db}"\n'
    )
    monkeypatch.setenv("OPS_PIPELINES_CONFIG", str(path))
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    backup = capability_job(defs, config, "erp", "backup")
    restore = capability_job(defs, config, "erp", "restore_test")
    for _ in range(2):
        assert backup.execute_in_process(partition_key="erp", instance=instance).success
        assert restore.execute_in_process(partition_key="erp", instance=instance).success
    store = LocalStorage(tmp_path / "store")
    older, newest = [e.stamp for e in complete_backups(store, "erp")][-2:]
    dump = tmp_path / "store" / "erp" / f"{newest}.dump.zst"
    data = bytearray(dump.read_bytes())
    middle = slice(len(data) // 2, len(data) // 2 + 8)
    data[middle] = bytes(b ^ 0xFF for b in data[middle])
    dump.write_bytes(bytes(data))

    failed = restore.execute_in_process(partition_key="erp", instance=instance, raise_on_error=False)
    assert not failed.success
    checks = {c.check_name: c for c in failed.get_asset_check_evaluations()}
    assert not checks["restore_verified"].passed

    proof, withdrawn = newest_proof(store, complete_backups(store, "erp"))
    assert proof is not None and proof.backup == older
    assert [j.entry.stamp for j in withdrawn] == [newest] and "newest restore test failed" in withdrawn[0].why_not

    status = recovery_status(store, "erp", dt.datetime.now(dt.UTC))
    assert status.verified is not None and status.verified.backup == older and status.withdrawn == [newest]

    events = tick(defs, instance, None).asset_events
    for event in events:
        instance.report_runless_asset_event(event)
    recorded = latest_status(instance, "erp")
    assert recorded["newest_backup_proven"].value == older and not recorded["newest_is_proven"].value
    assert f"| proof withdrawn | **backup {newest} is not proven" in recorded["summary"].value

    assert main(["backups", "erp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"{newest}  NOT PROVEN") and "newest restore test failed" in lines[1]
    assert lines[2].startswith(f"{older}  verified")

    target = f"ops_test_c4_{newest.lower()}"
    try:
        assert main(["recover", "erp", "--target", target]) == 0
        out = capsys.readouterr().out
        assert f"passing over backup {newest}: its newest restore test failed" in out
        assert f"done: {target} holds backup {older}" in out
    finally:
        from ops_pipelines.adapters.postgres import with_dbname
        from ops_pipelines_tests.conftest import drop_database

        drop_database(with_dbname(erp_db, "postgres"), target)

    # A new restore test that passes again (the dump repaired) restores the proof: the newest evidence wins
    middle = slice(len(data) // 2, len(data) // 2 + 8)
    data[middle] = bytes(b ^ 0xFF for b in data[middle])
    dump.write_bytes(bytes(data))
    assert restore.execute_in_process(partition_key="erp", instance=instance).success
    assert newest_proof(store, complete_backups(store, "erp"))[0].backup == newest
