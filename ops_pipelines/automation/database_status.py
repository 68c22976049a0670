"""`database_status`, partitioned by database: where one database stands, on one page.

The DBA's question — when was database X last backed up, when was that backup last proven
restorable, is it off-site, what fails — is spread over several assets and checks. This asset has
no function: a sensor records a materialization of a database's partition whenever its answer
changes, so the catalog's `database_status` → Partitions → X shows the answer and its history.
It reads what the checks read (the backup store) and what Dagster recorded (each check's newest
result per database; the newest off-site copy), in a few queries for the whole fleet.
"""

import datetime as dt
import hashlib
import json

import dagster as dg

from ops_pipelines.adapters.storage import local_storage
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backups.recovery_status import RecoveryStatus, recovery_status
from ops_pipelines.history import (
    FailingCheck,
    failing_checks,
    latest_materializations,
    materialization_metadata,
    one_line,
)
from ops_pipelines.localtime import local_time
from ops_pipelines.markdown import md_cell
from ops_pipelines.records.backup import OffsiteCopyRecord
from ops_pipelines.units import format_bytes

STATUS_KEY = dg.AssetKey("database_status")
OFFSITE = dg.AssetKey("offsite_copy")
GROUP = "status"


def build(config: OpsConfig, asset_graph) -> dg.Definitions:
    partitions = dg.StaticPartitionsDefinition([db.name for db in config.databases])
    spec = dg.AssetSpec(
        STATUS_KEY,
        partitions_def=partitions,
        group_name=GROUP,
        kinds={"postgres"},
        description="Where each database stands (a partition per database): newest backup, newest backup proven "
        "restorable and its restore time, off-site copy, and every check failing now. Recorded by "
        "database_status_sensor when a database's answer changes; open Partitions and pick the database.",
    )
    check_keys = sorted(asset_graph.asset_check_keys, key=lambda k: k.to_user_string())
    return dg.Definitions(assets=[spec], sensors=[status_sensor(config, check_keys)])


def status_sensor(config: OpsConfig, check_keys: list[dg.AssetCheckKey]) -> dg.SensorDefinition:
    storage = local_storage(config)

    @dg.sensor(
        name="database_status_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records database_status for each database whose answer changed (backups, restore tests, "
        "off-site copy, failing checks).",
    )
    def database_status(context: dg.SensorEvaluationContext):
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        now = dt.datetime.now(dt.UTC)
        failing = failing_checks(context.instance, check_keys)
        offsite = latest_materializations(context.instance, OFFSITE)
        events = []
        for db in config.databases:
            status = recovery_status(storage, db.name, now, trend_days=1)
            copy = OffsiteCopyRecord.from_metadata(materialization_metadata(offsite.get(db.name)))
            metadata = status_metadata(status, copy, failing.get(db.name, []), config.timezone)
            plain = {k: v.value if isinstance(v, dg.MetadataValue) else v for k, v in metadata.items()}
            fingerprint = hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:16]
            if seen.get(db.name) != fingerprint:
                seen[db.name] = fingerprint
                events.append(dg.AssetMaterialization(STATUS_KEY, partition=db.name, metadata=metadata))
        seen = {name: seen[name] for name in (db.name for db in config.databases) if name in seen}
        if not events:
            return dg.SensorResult(skip_reason=f"no change in {len(config.databases)} databases", cursor=context.cursor)
        return dg.SensorResult(asset_events=events, cursor=json.dumps(seen, sort_keys=True))

    return database_status


def status_metadata(
    status: RecoveryStatus,
    offsite: OffsiteCopyRecord | None,
    failing: list[FailingCheck],
    timezone: str,
) -> dict:
    """Plain values (the sensor compares them to see a change); Dagster types them when recorded."""
    newest_at = status.newest_backup_at
    verified = status.verified
    copied = offsite.backup if offsite is not None else None
    lines = [
        "| question | answer |",
        "|---|---|",
        "| newest backup | "
        + (
            f"{status.newest_backup} ({local_time(newest_at, timezone)}), "
            f"{format_bytes(status.newest_backup_bytes or 0)}"
            if newest_at
            else "**none**"
        )
        + " |",
        "| newest backup proven restorable | "
        + (
            f"{verified.backup}, tested {local_time(verified.finished_at, timezone) or '?'}"
            + (f", restored in {verified.restore_seconds:.1f} s" if verified.restore_seconds is not None else "")
            if verified
            else "**none**"
        )
        + (" (the newest)" if verified and verified.backup == status.newest_backup else "")
        + " |",
        *([f"| proof withdrawn | **{md_cell(one_line(status.problem, 300))}** |"] if status.problem else []),
        "| off-site copy | " + (copied or "none recorded") + " |",
        "| incomplete dumps | " + str(status.incomplete) + " |",
    ]
    table = ["| check | severity | why |", "|---|---|---|"] + [
        f"| {md_cell(f.key.asset_key.to_user_string() + ':' + f.key.name)} | {f.severity} | "
        f"{md_cell(one_line(f.evaluation.description or '', 300))} |"
        for f in failing
    ]
    summary = (
        "\n".join(lines)
        + "\n\n"
        + (f"**{len(failing)} failing checks**\n\n" + "\n".join(table) if failing else "No check fails.")
    )
    metadata: dict = {
        "summary": dg.MetadataValue.md(summary),  # first: the answer, as a DBA reads it
        "newest_backup": status.newest_backup or "none",
        "newest_backup_proven": verified.backup if verified else "none",
        "newest_is_proven": bool(verified and verified.backup == status.newest_backup),
        "offsite_copy": copied or "none",
        "failing_checks": len(failing),
        "failing_errors": sum(1 for f in failing if f.severity == "error"),
    }
    if verified and verified.restore_seconds is not None:
        metadata["restore_seconds"] = round(verified.restore_seconds, 2)
    if status.problem:
        metadata["problem"] = status.problem
    return metadata
