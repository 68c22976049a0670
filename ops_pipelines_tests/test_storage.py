"""Storage backends: local directory and S3 over HTTP (moto's server), never a patched boto3."""

import hashlib
import os
import time

import pytest

from ops_pipelines.adapters.storage import LocalStorage, StorageError
from ops_pipelines.adapters.storage.s3 import S3Storage
from ops_pipelines.core.backups.backup import run_backup
from ops_pipelines.core.backups.catalog import complete_backups, read_manifest
from ops_pipelines.core.backups.offsite import copy_backup, verify_copy
from ops_pipelines.errors import OpsError
from ops_pipelines_tests.helpers import make_config

MIB = 1024 * 1024


def test_local_write_is_all_or_nothing(tmp_path):
    storage = LocalStorage(tmp_path)
    with pytest.raises(RuntimeError):
        with storage.open_write("db/a.bin") as out:
            out.write(b"half")
            raise RuntimeError("interrupted")
    assert storage.list_objects("db/") == [] and list((tmp_path / "db").iterdir()) == []
    storage.write_bytes("db/a.bin", b"whole")
    assert [o.key for o in storage.list_objects("db/")] == ["db/a.bin"]
    assert storage.read_bytes("db/a.bin") == b"whole"
    with pytest.raises(StorageError, match="outside"):
        storage.path("../escape")


def test_s3_multipart_upload_streams_with_bounded_parts(s3_endpoint, s3_bucket):
    storage = S3Storage(s3_bucket, "prod/", endpoint_url=s3_endpoint, region="us-east-1", part_bytes=5 * MIB)
    payload = os.urandom(12 * MIB + 123)
    digest = hashlib.sha256(payload).hexdigest()
    with storage.open_write("erp/big.bin", sha256=digest) as out:
        for start in range(0, len(payload), MIB):
            out.write(payload[start : start + MIB])
            assert out.buffer.tell() < 5 * MIB + MIB  # never more than one part in memory
        assert len(out.parts) == 2  # the third, short part is sent on completion
    stored = storage.stat("erp/big.bin")
    assert (stored.bytes, stored.sha256) == (len(payload), digest)
    assert storage.read_bytes("erp/big.bin") == payload
    assert storage.uri("erp/big.bin") == f"s3://{s3_bucket}/prod/erp/big.bin"


def test_s3_failed_upload_leaves_no_object(s3_endpoint, s3_bucket):
    storage = S3Storage(s3_bucket, endpoint_url=s3_endpoint, region="us-east-1", part_bytes=5 * MIB)
    with pytest.raises(RuntimeError):
        with storage.open_write("erp/broken.bin") as out:
            out.write(os.urandom(6 * MIB))  # one part already uploaded
            raise RuntimeError("source failed")
    assert storage.stat("erp/broken.bin") is None
    uploads = storage.client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert uploads == []


def test_s3_listing_paginates(s3_endpoint, s3_bucket):
    storage = S3Storage(s3_bucket, "p/", endpoint_url=s3_endpoint, region="us-east-1", page_size=10)
    for i in range(25):
        storage.write_bytes(f"erp/{i:03d}.bin", b"x")
    storage.write_bytes("other/1.bin", b"x")
    listed = storage.list_objects("erp/")
    assert [o.key for o in listed] == [f"erp/{i:03d}.bin" for i in range(25)]
    storage.delete("erp/000.bin")
    storage.delete("erp/000.bin")  # missing is fine
    assert len(storage.list_objects("erp/")) == 24


def test_s3_down_is_one_line():
    storage = S3Storage("erp-backups", endpoint_url="http://127.0.0.1:9", region="us-east-1")
    storage.client.meta.config.retries["max_attempts"] = 1
    with pytest.raises(StorageError) as info:
        storage.write_bytes("erp/x.bin", b"x")
    assert str(info.value).startswith(
        "cannot write s3://erp-backups/erp/x.bin at http://127.0.0.1:9: Could not connect"
    )
    assert "\n" not in str(info.value)


def test_offsite_copy_and_its_verification(erp_db, tmp_path, s3_endpoint, s3_bucket):
    config = make_config(tmp_path, {"erp": erp_db})
    local = LocalStorage(tmp_path)
    run_backup(config.databases[0], local)
    entry = complete_backups(local, "erp")[-1]
    s3 = S3Storage(s3_bucket, "prod/", endpoint_url=s3_endpoint, region="us-east-1")

    first = copy_backup(local, s3, entry)
    assert not first.already_there and first.copied_bytes == first.manifest.bytes
    assert complete_backups(s3, "erp")[-1].stamp == entry.stamp
    assert verify_copy(local, s3, first.manifest).passed
    assert copy_backup(local, s3, entry).already_there

    # M3: the off-site manifest must exist and equal the local one
    manifest_name = f"erp/{entry.stamp}.manifest.json"
    s3.delete(manifest_name)
    verdict = verify_copy(local, s3, first.manifest)
    assert not verdict.passed and "does not exist" in verdict.description and manifest_name in verdict.description
    assert not copy_backup(local, s3, entry).already_there  # a missing manifest is sent again
    s3.write_bytes(manifest_name, local.read_bytes(manifest_name).replace(b'"source"', b'"sourcE"'))
    verdict = verify_copy(local, s3, first.manifest)
    assert not verdict.passed and "differs from the local" in verdict.description

    # M4: an in-place tamper of the same size with the metadata kept is found only by the re-read;
    # a copy asked to resend (the last offsite_matches failed) mends it
    copy_backup(local, s3, entry, resend=True)
    data = bytearray(s3.read_bytes(first.manifest.dump_key))
    data[len(data) // 2] ^= 0xFF
    with s3.open_write(first.manifest.dump_key, sha256=first.manifest.sha256) as out:
        out.write(bytes(data))
    assert copy_backup(local, s3, entry).already_there  # size and metadata match: not re-sent by itself
    assert "damaged" in verify_copy(local, s3, first.manifest).description
    resent = copy_backup(local, s3, entry, resend=True)
    assert not resent.already_there and verify_copy(local, s3, first.manifest).passed

    s3.write_bytes(first.manifest.dump_key, b"not the backup")  # replaced behind our back
    verdict = verify_copy(local, s3, read_manifest(local, entry))
    assert not verdict.passed and "bytes" in verdict.description

    local_dump = tmp_path / first.manifest.dump_key
    local_dump.write_bytes(local_dump.read_bytes()[:-10])  # a damaged local file is not sent
    s3.delete(first.manifest.dump_key)
    with pytest.raises(OpsError, match="no longer matches its manifest"):
        copy_backup(local, s3, entry)
    assert s3.stat(first.manifest.dump_key) is None


def test_a_frozen_endpoint_fails_within_its_timeout_naming_itself(tmp_path):
    """m4: an endpoint that accepts connections and never answers took over 300 s to fail, as
    `cannot read …dump.zst` on endpoint "None". Now: 3 attempts of `timeout` each, the endpoint named."""
    import socket

    from ops_pipelines.adapters.storage import StorageError

    frozen = socket.socket()
    frozen.bind(("127.0.0.1", 0))
    frozen.listen(16)  # the kernel completes the handshakes; nothing ever reads or answers
    endpoint = f"http://127.0.0.1:{frozen.getsockname()[1]}"
    try:
        store = S3Storage("bucket", "p/", endpoint_url=endpoint, region="us-east-1", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(StorageError) as info:
            store.stat("erp/20261204T000000Z.dump.zst")
        elapsed = time.monotonic() - started
        message = str(info.value)
        assert message.startswith("cannot look up s3://bucket/p/erp/20261204T000000Z.dump.zst at " + endpoint)
        assert '"None"' not in message
        assert elapsed < 30, elapsed  # 3 attempts of 1 s, and the backoff between them
        with pytest.raises(StorageError, match=f"cannot list s3://bucket/p/erp/ at {endpoint}"):
            store.list_objects("erp/")
    finally:
        frozen.close()
