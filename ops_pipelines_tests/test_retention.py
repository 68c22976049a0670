"""Retention: a pure decision (tested without a disk), then applied to real stores."""

import datetime as dt
import hashlib

import dagster as dg
import pytest

from ops_pipelines.adapters.storage import LocalStorage, StoredObject
from ops_pipelines.adapters.storage.s3 import S3Storage
from ops_pipelines.config import Retention
from ops_pipelines.core.backups.catalog import BackupEntry, list_backups, stamp_for, stamp_time
from ops_pipelines.core.backups.manifest import BackupManifest
from ops_pipelines.core.backups.proof import record_result
from ops_pipelines.core.backups.retention import plan_retention
from ops_pipelines.definitions import build_definitions
from ops_pipelines_tests.helpers import make_config

START = dt.datetime(2026, 1, 1, 19, 0, tzinfo=dt.UTC)  # 02:00 the next day in Ho Chi Minh City


def entry(moment: dt.datetime, *, dump=True, manifest=True, verified=False) -> BackupEntry:
    stamp = stamp_for(moment)
    obj = StoredObject(f"erp/{stamp}.dump.zst", 1000, moment)
    man = StoredObject(f"erp/{stamp}.manifest.json", 10, moment)
    return BackupEntry("erp", stamp, obj if dump else None, man if manifest else None, verified)


def daily_backups(days: int) -> list[BackupEntry]:
    return [entry(START + dt.timedelta(days=i)) for i in range(days)]


def kept(decisions) -> list[str]:
    return [d.entry.stamp for d in decisions if d.action == "keep"]


def test_grandfather_father_son():
    entries = daily_backups(120)  # 2026-01-02 .. 2026-05-01 local time
    decisions = plan_retention(entries, Retention(daily=7, weekly=4, monthly=3), "Asia/Ho_Chi_Minh")
    keep = {
        d.entry.started_at.astimezone(dt.timezone(dt.timedelta(hours=7))).date().isoformat()
        for d in decisions
        if d.action == "keep"
    }
    expected_daily = {f"2026-04-{d}" for d in range(25, 31)} | {"2026-05-01"}
    expected_weekly = {"2026-04-26", "2026-04-19", "2026-04-12"}  # Sundays, newest of their ISO week
    expected_monthly = {"2026-03-31"}  # May and April: their newest are daily ones already
    assert keep == expected_daily | expected_weekly | expected_monthly
    assert sum(d.action == "delete" for d in decisions) == 120 - len(keep)


def test_days_are_counted_in_the_configured_time_zone():
    # 18:30 and 17:30 UTC on the same UTC day are two local days in UTC+7 (01:30 and 00:30 ... ).
    a = entry(dt.datetime(2026, 3, 1, 16, 30, tzinfo=dt.UTC))  # 23:30 local, 1 March
    b = entry(dt.datetime(2026, 3, 1, 17, 30, tzinfo=dt.UTC))  # 00:30 local, 2 March
    assert len(kept(plan_retention([a, b], Retention(daily=2, weekly=0, monthly=0), "Asia/Ho_Chi_Minh"))) == 2
    assert len(kept(plan_retention([a, b], Retention(daily=2, weekly=0, monthly=0), "UTC"))) == 1


def test_newest_and_newest_verified_are_always_kept():
    entries = daily_backups(10)
    entries[2] = entry(entries[2].started_at, verified=True)
    decisions = plan_retention(entries, Retention(daily=0, weekly=0, monthly=0), "UTC")
    by_stamp = {d.entry.stamp: d for d in decisions}
    assert kept(decisions) == [entries[2].stamp, entries[-1].stamp]
    assert by_stamp[entries[-1].stamp].reasons == ("newest",)
    assert by_stamp[entries[2].stamp].reasons == ("newest proven by a restore test",)


def test_incomplete_backups_are_reported_not_deleted():
    entries = daily_backups(5) + [entry(START + dt.timedelta(days=9), manifest=False)]
    entries.insert(0, entry(START - dt.timedelta(days=30), dump=False))
    decisions = {d.entry.stamp: d for d in plan_retention(entries, Retention(daily=1, weekly=0, monthly=0), "UTC")}
    newest_dump_only = decisions[entries[-1].stamp]
    assert newest_dump_only.action == "report" and "without a manifest" in newest_dump_only.reasons[0]
    assert decisions[entries[0].stamp].action == "delete"  # a dangling manifest
    assert decisions[entries[5].stamp].action == "keep"  # newest complete, though a newer dump exists


def test_no_backups_no_decisions():
    assert plan_retention([], Retention(), "UTC") == []


def with_s3(store, s3_endpoint: str, s3_bucket: str, daily: int):
    """A config keeping `daily` daily backups, with an S3 store; and that store."""
    config = make_config(
        store,
        {"erp": "host=127.0.0.1 dbname=unused"},
        extra=f"backup: {{retention: {{daily: {daily}, weekly: 0, monthly: 0}}}}",
        s3=f"{{bucket: {s3_bucket}, prefix: p/, endpoint_url: '{s3_endpoint}', region: us-east-1}}",
    )
    return config, S3Storage(s3_bucket, "p/", endpoint_url=s3_endpoint, region="us-east-1")


def fake_manifest(stamp: str, payload: bytes = b"dump", database: str = "erp") -> BackupManifest:
    """A manifest of the shape the backup writes, for `payload` as the dump (retention and proof
    read manifests; they never restore these)."""
    at = stamp_time(stamp)
    return BackupManifest(
        database=database,
        dump_key=f"{database}/{stamp}.dump.zst",
        sha256=hashlib.sha256(payload).hexdigest(),
        bytes=len(payload),
        dump_bytes=len(payload),
        format="custom",
        compression="zstd",
        compression_level=3,
        pg_dump_version="15",
        server_version="15",
        server_version_num=150000,
        started_at=at,
        finished_at=at,
        snapshot="-",
        source="test",
    )


def fake_backup(storage, stamp: str, payload: bytes = b"dump", *, proven: bool = False) -> BackupManifest:
    manifest = fake_manifest(stamp, payload)
    storage.write_bytes(f"erp/{stamp}.dump.zst", payload)
    storage.write_bytes(f"erp/{stamp}.manifest.json", manifest.to_json().encode())
    if proven:
        record_result(storage, manifest, stamp, {"restore_seconds": 1.0}, passed=True)
    return manifest


@pytest.mark.parametrize("dry_run", [True, False])
def test_retention_asset_deletes_locally_and_off_site(tmp_path, s3_endpoint, s3_bucket, dry_run, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config, s3 = with_s3(tmp_path / "store", s3_endpoint, s3_bucket, daily=2)
    local = LocalStorage(tmp_path / "store")
    stamps = [stamp_for(START + dt.timedelta(days=i)) for i in range(5)]
    for stamp in stamps:
        fake_backup(local, stamp, proven=stamp == stamps[0])
        fake_backup(s3, stamp)
    local.write_bytes("erp/20250101T000000Z.dump.zst", b"orphan")  # no manifest: reported, kept

    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [defs.resolve_assets_def(dg.AssetKey("backup_retention"))],
        instance=instance,
        run_config={"ops": {"backup_retention": {"config": {"dry_run": dry_run}}}},
        selection=[dg.AssetKey("backup_retention")],
        partition_key="erp",
    )
    assert result.success
    metadata = instance.get_latest_materialization_event(dg.AssetKey("backup_retention")).asset_materialization.metadata
    remaining_local = [e.stamp for e in list_backups(local, "erp")]
    remaining_s3 = [e.stamp for e in list_backups(s3, "erp")]
    if dry_run:
        assert metadata["would_delete"].value == 2 and metadata["deleted"].value == 0
        assert remaining_local == ["20250101T000000Z", *stamps] and remaining_s3 == stamps
    else:
        # kept: the newest two days, and the oldest (verified); deleted: days 2 and 3
        assert metadata["deleted"].value == 2 and metadata["freed_bytes"].value == 8
        assert remaining_local == ["20250101T000000Z", stamps[0], stamps[3], stamps[4]]
        assert remaining_s3 == [stamps[0], stamps[3], stamps[4]]
    assert metadata["reported"].value == 1 and metadata["kept"].value == 3


def run_retention(config):
    instance = dg.DagsterInstance.ephemeral()
    key = dg.AssetKey("backup_retention")
    result = dg.materialize(
        [build_definitions(config).resolve_assets_def(key)],
        instance=instance,
        selection=[key],
        partition_key="erp",
        raise_on_error=False,
    )
    return result, instance


def test_an_off_site_copy_whose_local_backup_is_gone_is_still_deleted(tmp_path, s3_endpoint, s3_bucket, monkeypatch):
    """Last time the local delete worked and the S3 one failed (or the local copy was lost): the plan
    covers both stores, so the S3 object does not stay forever."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config, s3 = with_s3(tmp_path / "store", s3_endpoint, s3_bucket, daily=2)
    local = LocalStorage(tmp_path / "store")
    stamps = [stamp_for(START + dt.timedelta(days=i)) for i in range(4)]
    for stamp in stamps:
        fake_backup(s3, stamp)
    for stamp in stamps[2:]:
        fake_backup(local, stamp)  # the two oldest exist off-site only
    result, instance = run_retention(config)
    assert result.success
    assert [e.stamp for e in list_backups(s3, "erp")] == stamps[2:]
    assert [e.stamp for e in list_backups(local, "erp")] == stamps[2:]
    metadata = instance.get_latest_materialization_event(dg.AssetKey("backup_retention")).asset_materialization.metadata
    assert metadata["deleted"].value == 2 and metadata["delete_failures"].value == 0


@pytest.fixture
def read_only_store(tmp_path):
    """A store whose files cannot be deleted even by root: a read-only bind mount."""
    import subprocess

    source, mount_point = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    mount_point.mkdir()
    if subprocess.run(["mount", "--bind", str(source), str(mount_point)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount (needs root) to make an undeletable store")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mount_point)], check=True, capture_output=True)
        yield source, mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_a_failed_delete_is_reported_and_the_rest_goes_on(read_only_store, s3_endpoint, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    writable, read_only = read_only_store
    config, s3 = with_s3(read_only, s3_endpoint, s3_bucket, daily=1)
    stamps = [stamp_for(START + dt.timedelta(days=i)) for i in range(3)]
    for stamp in stamps:
        fake_backup(LocalStorage(writable), stamp)  # seen through the read-only mount
        fake_backup(s3, stamp)
    result, instance = run_retention(config)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error.message)
    assert "could not delete 2 object(s)" in message and "Read-only file system" in message
    assert [e.stamp for e in list_backups(s3, "erp")] == stamps[2:]  # off-site deletes went on
    assert [e.stamp for e in list_backups(LocalStorage(writable), "erp")] == stamps  # retried next run


def test_entries_seen_only_off_site_never_displace_local_backups():
    """C1's plan, without a disk: an S3-only entry newer than every local backup, and one in between,
    take no slot from the local ones; the one in the future is reported, never kept as newest."""
    local = daily_backups(3)
    planted_between = entry(START + dt.timedelta(days=1, hours=3))
    later = entry(START + dt.timedelta(days=5))  # an off-site copy newer than any local one
    future = entry(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    future = BackupEntry(**{**future.__dict__, "refused": "stamp in the future"})
    entries = sorted([*local, planted_between, later, future], key=lambda e: e.stamp)
    decisions = {
        d.entry.stamp: d
        for d in plan_retention(entries, Retention(daily=3, weekly=0, monthly=0), "UTC", local={e.stamp for e in local})
    }
    assert all(decisions[e.stamp].action == "keep" for e in local)  # all three local days stay
    assert decisions[future.stamp].action == "report"
    assert decisions[later.stamp].action == "keep" and "newest" in decisions[later.stamp].reasons
    # without the rule (every entry trusted), the S3-only entries would have pushed a local day out
    trusted_all = plan_retention(entries, Retention(daily=3, weekly=0, monthly=0), "UTC")
    assert any(d.action == "delete" and d.entry in local for d in trusted_all)


def test_a_planted_future_pair_in_s3_deletes_no_genuine_backup(tmp_path, s3_endpoint, s3_bucket, monkeypatch):
    """C1 against real stores: genuine backups locally and in S3, plus a pair planted in S3 under a
    stamp in the future (random bytes, their sha256 in the metadata, a copy of a real manifest)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    config, s3 = with_s3(tmp_path / "store", s3_endpoint, s3_bucket, daily=1)
    local = LocalStorage(tmp_path / "store")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    genuine = [stamp_for(now - dt.timedelta(minutes=20)), stamp_for(now - dt.timedelta(minutes=10))]
    for stamp in genuine:
        fake_backup(local, stamp, proven=stamp == genuine[-1])
        fake_backup(s3, stamp)
    planted = stamp_for(now + dt.timedelta(hours=20))
    junk = bytes(range(256)) * 3500
    with s3.open_write(f"erp/{planted}.dump.zst", sha256=hashlib.sha256(junk).hexdigest()) as out:
        out.write(junk)
    s3.write_bytes(f"erp/{planted}.manifest.json", s3.read_bytes(f"erp/{genuine[-1]}.manifest.json"))
    s3.write_bytes(f"erp/{planted}.restore-ok.json", local.read_bytes(f"erp/{genuine[-1]}.restore-ok.json"))

    result, instance = run_retention(config)
    assert result.success
    metadata = instance.get_latest_materialization_event(dg.AssetKey("backup_retention")).asset_materialization.metadata
    rows = {row.data["backup"]: row.data for row in metadata["decisions"].value.records}
    assert rows[planted]["action"] == "report" and "in the future" in rows[planted]["reasons"]
    assert rows[genuine[-1]]["action"] == "keep"
    assert [e.stamp for e in list_backups(local, "erp") if e.complete] == [genuine[-1]]  # daily: 1 kept locally
    assert genuine[-1] in [e.stamp for e in list_backups(s3, "erp") if e.complete]
