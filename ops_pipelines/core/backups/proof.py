"""What proves a backup restorable, and what withdraws the proof.

A restore test (or the off-site drill) leaves its evidence beside the backup it restored:

    <db>/<stamp>.restore-ok.json      it passed: the report, and the sha256 and size of the dump it read
    <db>/<stamp>.restore-failed.json  it failed: the report or the refusal, and the same binding

Each result replaces the other (the new marker is written first, then the old one removed), so the
newest evidence about those bytes is what stands; were both left by an interruption, the one that
finished later wins. A backup is *proven* only while all of this holds:

- its newest restore test passed;
- the marker names this database and this backup, and the sha256 of the dump it read equals the
  manifest's (a marker copied beside other bytes proves nothing);
- the dump and the manifest still exist, and the dump's size is the manifest's;
- from an untrusted store (S3) with a key set, the marker's signature is valid (core/backups/signing.py).

"Newest proven" is the newest backup that passes all of them: a backup whose newest test failed,
or whose dump was damaged or deleted, gives way to the older one. Every reader of proof (the CLI,
database_status, the report, the textfile, the checks and retention) goes through `newest_proof`
or `judge`, so none of them can disagree.
"""

import datetime as dt
import json
from dataclasses import dataclass

from ops_pipelines.adapters.storage import BackupStorage, StorageError
from ops_pipelines.core.backups.catalog import BackupEntry, failed_key, list_backups, read_manifest, verified_key
from ops_pipelines.core.backups.manifest import BackupManifest, ManifestError
from ops_pipelines.core.backups.signing import sign, signature_problem


@dataclass(frozen=True)
class Proof:
    """A backup's standing proof: the newest restore test of those bytes passed."""

    backup: str  # stamp of the backup the test restored
    finished_at: dt.datetime | None
    restore_seconds: float | None
    sandbox: str | None


@dataclass(frozen=True)
class Judgement:
    entry: BackupEntry
    proof: Proof | None
    why_not: str | None  # None when proven; else why not, in a phrase ("its newest restore test failed: ...")
    tested: bool = False  # a restore test left evidence about this backup (passed or failed)


def record_result(storage: BackupStorage, manifest: BackupManifest, stamp: str, report: dict, *, passed: bool) -> None:
    """Leave the evidence of one restore test of backup `stamp`; `report`: the test's report as JSON data."""
    marker = sign(
        {
            **report,
            "database": manifest.database,
            "backup": stamp,
            "passed": passed,
            "dump_sha256": manifest.sha256,
            "dump_bytes": manifest.bytes,
            "finished_at": report.get("finished_at") or dt.datetime.now(dt.UTC).isoformat(),
        }
    )
    data = (json.dumps(marker, indent=2, sort_keys=True) + "\n").encode()
    keep, drop = (verified_key, failed_key) if passed else (failed_key, verified_key)
    storage.write_bytes(keep(manifest.database, stamp), data)
    storage.delete(drop(manifest.database, stamp))


def judge(storage: BackupStorage, entry: BackupEntry) -> Judgement:
    """Whether `entry` stands proven now (reads its markers and manifest: a few small files)."""
    tested = entry.verified or entry.failed
    if not entry.complete:
        missing = entry.refused or ("its dump is gone" if entry.dump is None else "its manifest is gone")
        return Judgement(entry, None, missing, tested)
    if not tested:
        return Judgement(entry, None, "no restore test of it yet")
    try:
        passed = _read_marker(storage, entry, verified_key) if entry.verified else None
        failed = _read_marker(storage, entry, failed_key) if entry.failed else None
        if failed is not None and (passed is None or _finished(failed) >= _finished(passed)):
            return Judgement(entry, None, f"its newest restore test failed: {_first_problem(failed)}", True)
        assert passed is not None  # tested, and not failed
        manifest = read_manifest(storage, entry)
    except (StorageError, ManifestError, ValueError) as exc:
        return Judgement(entry, None, f"its evidence cannot be trusted: {exc}", True)
    bound = passed.get("dump_sha256")
    if bound is None and not storage.trusted:
        return Judgement(
            entry, None, "its restore-ok marker binds no sha256 (written by an older version): test it again", True
        )
    if bound is not None and bound != manifest.sha256:
        return Judgement(entry, None, "its restore-ok marker proved other bytes than the manifest names", True)
    if entry.dump is not None and entry.dump.bytes != manifest.bytes:
        return Judgement(
            entry, None, f"its dump is {entry.dump.bytes:,} bytes, the manifest says {manifest.bytes:,}", True
        )
    seconds = passed.get("restore_seconds")
    finished = passed.get("finished_at")
    proof = Proof(
        backup=entry.stamp,
        finished_at=dt.datetime.fromisoformat(finished) if finished else None,
        restore_seconds=float(seconds) if seconds is not None else None,
        sandbox=passed.get("sandbox"),
    )
    return Judgement(entry, proof, None, True)


def newest_proof(storage: BackupStorage, entries: list[BackupEntry]) -> tuple[Proof | None, list[Judgement]]:
    """The newest backup standing proven, and the judgements of the newer tested ones that are not
    (a failed test, a damaged or deleted dump): what a reader says beside it."""
    withdrawn = []
    for entry in reversed(entries):
        if not (entry.verified or entry.failed):
            continue
        judgement = judge(storage, entry)
        if judgement.proof is not None:
            return judgement.proof, withdrawn
        withdrawn.append(judgement)
    return None, withdrawn


def _read_marker(storage: BackupStorage, entry: BackupEntry, key_of) -> dict:
    key = key_of(entry.database, entry.stamp)
    data = json.loads(storage.read_bytes(key))
    if not isinstance(data, dict):
        raise ValueError(f"{storage.uri(key)}: expected a JSON object")
    problem = signature_problem(data, required=not storage.trusted)
    if problem:
        raise ValueError(f"{storage.uri(key)} {problem}")
    if data.get("database", entry.database) != entry.database or data.get("backup", entry.stamp) != entry.stamp:
        raise ValueError(f"{storage.uri(key)} names backup {data.get('backup')} of {data.get('database')}")
    return data


def _finished(marker: dict) -> str:
    return str(marker.get("finished_at") or "")


def _first_problem(marker: dict) -> str:
    errors = marker.get("restore_errors") or []
    mismatches = marker.get("mismatches") or []
    if errors:
        return str(errors[0])
    if mismatches:
        first = mismatches[0]
        return f"{first.get('table')}: {first.get('problem')}" if isinstance(first, dict) else str(first)
    return "see its restore-failed marker"


def store_proof(storage: BackupStorage, database: str) -> Proof | None:
    """The newest backup standing proven in one store (for S3: the newest passing off-site drill
    whose bytes are still there); None when none stands, or the store cannot be read."""
    try:
        return newest_proof(storage, list_backups(storage, database))[0]
    except StorageError:
        return None
