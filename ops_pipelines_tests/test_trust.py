"""S3 is untrusted storage: a record there is believed only when it names itself, is not stamped in
the future, and (with OPS_PIPELINES_BACKUP_HMAC_KEY) carries a valid signature. Pure checks without
I/O, then a planted, self-consistent pair in a real S3 server (moto)."""

import dataclasses
import datetime as dt
import hashlib

import pytest

from ops_pipelines.adapters.storage import LocalStorage
from ops_pipelines.adapters.storage.s3 import S3Storage
from ops_pipelines.core.backups.catalog import list_backups, read_manifest, stamp_for
from ops_pipelines.core.backups.manifest import BackupManifest, ManifestError
from ops_pipelines.core.backups.offsite_trust import choose_offsite
from ops_pipelines.core.backups.proof import judge, record_result
from ops_pipelines.core.backups.signing import KEY_ENV
from ops_pipelines_tests.test_retention import fake_backup, fake_manifest


def test_a_manifest_is_bound_to_the_names_it_is_stored_under():
    manifest = fake_manifest("20261204T040437Z")
    assert manifest.binding_problem("erp", "20261204T040437Z") is None
    assert "names dump erp/20261204T040437Z.dump.zst" in (manifest.binding_problem("erp", "20261204T040650Z") or "")
    assert "names database 'erp'" in (manifest.binding_problem("shop", "20261204T040437Z") or "")


def test_signatures_detect_an_altered_or_unsigned_record(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "a key only this instance holds")
    signed = fake_manifest("20261204T040437Z").to_json()
    assert '"signature"' in signed
    assert BackupManifest.from_json(signed, untrusted=True).sha256 == fake_manifest("20261204T040437Z").sha256
    altered = signed.replace('"bytes": 4', '"bytes": 5')
    with pytest.raises(ManifestError, match="signature does not match"):
        BackupManifest.from_json(altered, untrusted=True)
    monkeypatch.delenv(KEY_ENV)
    unsigned = fake_manifest("20261204T040437Z").to_json()
    monkeypatch.setenv(KEY_ENV, "a key only this instance holds")
    assert BackupManifest.from_json(unsigned).database == "erp"  # the local store may predate the key
    with pytest.raises(ManifestError, match="carries no signature"):
        BackupManifest.from_json(unsigned, untrusted=True)
    monkeypatch.setenv(KEY_ENV, "another key")
    with pytest.raises(ManifestError, match="signature does not match"):
        BackupManifest.from_json(signed, untrusted=True)


def test_a_marker_proves_only_the_bytes_it_read(tmp_path):
    store = LocalStorage(tmp_path)
    stamp = "20261204T040437Z"
    manifest = fake_backup(store, stamp)
    record_result(store, manifest, stamp, {"restore_seconds": 2.0}, passed=True)
    assert judge(store, list_backups(store, "erp")[-1]).proof is not None
    # the same marker beside other bytes (a new manifest, another sha256) proves nothing
    other = dataclasses.replace(manifest, sha256=hashlib.sha256(b"other").hexdigest())
    store.write_bytes(f"erp/{stamp}.manifest.json", other.to_json().encode())
    assert "proved other bytes" in (judge(store, list_backups(store, "erp")[-1]).why_not or "")
    # a dump cut short is not proven, whatever its marker says
    store.write_bytes(f"erp/{stamp}.manifest.json", manifest.to_json().encode())
    store.write_bytes(f"erp/{stamp}.dump.zst", b"du")
    assert "the manifest says 4" in (judge(store, list_backups(store, "erp")[-1]).why_not or "")


def test_a_self_consistent_planted_pair_needs_the_key_to_be_believed(tmp_path, s3_endpoint, s3_bucket, monkeypatch):
    """Someone with write access plants dump + manifest + marker, all naming each other, under a past
    stamp. Without this instance's record of it, the drill does not believe it; with the key set,
    neither does a read of its manifest (recover --from s3) nor its marker (offsite_restorable)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = S3Storage(s3_bucket, "p/", endpoint_url=s3_endpoint, region="us-east-1")
    local = LocalStorage(tmp_path)
    stamp = stamp_for(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    planted = fake_backup(s3, stamp, b"planted bytes")
    record_result(s3, planted, stamp, {"restore_seconds": 1.0}, passed=True)

    choice = choose_offsite(s3, local, "erp", recorded={})
    assert choice.entry is None and "not recorded by this instance" in choice.skipped[0]
    assert judge(s3, list_backups(s3, "erp")[-1]).proof is not None  # without a key, names alone agree

    monkeypatch.setenv(KEY_ENV, "a key only this instance holds")
    entry = list_backups(s3, "erp")[-1]
    with pytest.raises(ManifestError, match="carries no signature"):
        read_manifest(s3, entry)
    assert "cannot be trusted" in (judge(s3, entry).why_not or "")
    assert choose_offsite(s3, local, "erp", recorded={}).entry is None
