"""Each record written to a real (temporary) Dagster instance and read back from its event log:
what a reader gets is what the writer meant, whatever Dagster does to the metadata on the way."""

import dagster as dg

from ops_pipelines.capabilities.health.assets import HEALTH, previous_counters
from ops_pipelines.core.backups.restore import Mismatch, RestoreReport
from ops_pipelines.core.health import Counters
from ops_pipelines.history import latest_materialization, materialization_metadata
from ops_pipelines.records.backup import BACKUP_STAMP, OffsiteCopyRecord, backup_stamp
from ops_pipelines.records.restore import RestoreTestRecord


def _stored(instance: dg.DagsterInstance, asset: str, metadata: dict) -> dict:
    """`metadata` as a reader finds it: recorded on partition `erp` of `asset`, then fetched back."""
    key = dg.AssetKey(asset)
    instance.report_runless_asset_event(dg.AssetMaterialization(key, partition="erp", metadata=metadata))
    return materialization_metadata(latest_materialization(instance, key, "erp"))


def test_an_offsite_copy_record_reads_back_as_written():
    written = OffsiteCopyRecord(
        backup="20261204T020000Z",
        uri="s3://erp-backups/prod/erp/20261204T020000Z.dump",
        sha256="ab" * 32,
        bytes=12_345_678,
        copied_bytes=0,
        seconds=1.23456,
        already_there=True,
    )
    with dg.instance_for_test() as instance:
        stored = _stored(instance, "offsite_copy", written.to_metadata())
    read = OffsiteCopyRecord.from_metadata(stored)
    assert read == OffsiteCopyRecord(**{**written.__dict__, "seconds": 1.235})  # recorded to the millisecond
    assert stored["size"].value == "12.3 MB"  # with_sizes: the human size beside the count
    assert OffsiteCopyRecord.from_metadata({}) is None  # not a copy this code wrote


def test_a_restore_test_record_reads_back_as_written():
    failed = RestoreReport(
        database="erp",
        backup="20261204T020000Z",
        sandbox="local_cluster",
        restore_seconds=12.34567,
        tables_checked=40,
        rows_checked=1_000_000,
        mismatches=[Mismatch("public.orders", 10, 9, "row count differs")],
    )
    with dg.instance_for_test() as instance:
        stored = _stored(instance, "restore_test", RestoreTestRecord.to_metadata(failed))
    assert RestoreTestRecord.from_metadata(stored) == RestoreTestRecord("20261204T020000Z", False, 12.346)
    assert stored["mismatches"].value.records[0].data["restored_rows"] == 9
    assert RestoreTestRecord.from_metadata({}) == RestoreTestRecord(None, False, None)  # never called passed


def test_a_backup_stamp_reads_back_as_written():
    with dg.instance_for_test() as instance:
        stored = _stored(instance, "backup", {BACKUP_STAMP: dg.MetadataValue.text("20261204T020000Z")})
    assert backup_stamp(stored) == "20261204T020000Z"
    assert backup_stamp({}) is None


def test_the_cache_hit_counters_read_back_as_written():
    """The sensor records cache_hit with the block counters; the next probe run from the UI reads
    them back (`previous_counters`) to measure from there."""
    written = Counters(blks_hit=9_876_543_210, blks_read=12_345, stats_reset="2026-12-01 00:00:00+00")
    evaluation = dg.AssetCheckEvaluation(
        asset_key=HEALTH, check_name="cache_hit", passed=True, metadata=written.to_metadata(), partition="erp"
    )
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(evaluation)
        assert previous_counters(instance, "erp") == written
        assert previous_counters(instance, "other") is None  # nothing recorded for that database
    assert Counters.from_metadata(Counters(1, 2, None).to_metadata()) == Counters(1, 2, None)
    assert Counters.from_metadata({"blks_hit": 1}) is None
