"""`restore_test` (partitioned by database): restore a backup into a sandbox and prove it holds what its manifest says.

Its history answers "when was this database last proven recoverable, and how long did it take?"
(`restore_seconds` is the recovery-time figure). Checks: `restore_verified` (blocking, error on any
mismatch or pg_restore error) and `restore_recent` (a restore test passed within max_age).
"""

import datetime as dt

import dagster as dg

from ops_pipelines.assets.common import (
    Fleets,
    check_result,
    fleet_asset,
    fleet_check,
    fleet_check_spec,
    retry_if_transient,
)
from ops_pipelines.capability import Capability
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backup_catalog import list_backups, newest_verified_stamp
from ops_pipelines.core.backup_checks import orphan_dumps
from ops_pipelines.core.restore import RestoreReport, recent_restore, run_restore_test
from ops_pipelines.errors import OpsError
from ops_pipelines.markdown import md_cell
from ops_pipelines.resources.sandbox import sandbox_for
from ops_pipelines.resources.storage import local_storage


class RestoreTestConfig(dg.Config):
    backup: str = ""  # a backup stamp like 20261122T190000Z; empty: the newest complete backup


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    fleet = fleets["restore_test"]
    storage = local_storage(config)
    sandboxes = sorted({db.restore_test.sandbox for db in fleet.databases})

    @fleet_asset(
        capability,
        "restore_test",
        fleet,
        deps=("backup",),
        kinds=("postgres", "docker") if "docker" in sandboxes else ("postgres",),
        check_specs=[
            fleet_check_spec(
                "restore_test",
                "restore_verified",
                fleet,
                blocking=True,
                description="Every table of the manifest restored with exactly its row count; pg_restore reported no "
                "error; sanity queries returned rows.",
            )
        ],
        description=(
            f"Restores a backup of the database into a sandbox ({', '.join(sandboxes)}) and verifies it against "
            "the manifest. restore_seconds is the measured recovery time."
        ),
    )
    def restore_test(context: dg.AssetExecutionContext, config: RestoreTestConfig) -> dg.MaterializeResult:
        db = fleet.database(context.partition_key)
        entries = list_backups(storage, db.name)
        if config.backup:
            chosen = [e for e in entries if e.stamp == config.backup]
            if not chosen:
                raise OpsError(f"no backup {config.backup} of {db.name} in {storage.uri(db.name)}")
            why = "named in the launchpad"
        else:
            chosen = [e for e in entries if e.complete][-1:]
            if not chosen:
                raise OpsError(f"no complete backup of {db.name} to restore")
            why = "the newest complete backup"
            orphans = orphan_dumps(entries)
            if orphans:
                why += f"; newer dump {', '.join(orphans)} has no manifest (did not complete) and was not tested"
                context.log.warning(f"{db.name}: testing backup {chosen[0].stamp}: {why}")
        with retry_if_transient():
            report = run_restore_test(
                db, storage, chosen[0], sandbox_for(db), log=lambda message: context.log.info(f"{db.name}: {message}")
            )
        verdict = (
            "verified"
            if report.passed
            else f"FAILED ({len(report.mismatches)} mismatches, {len(report.restore_errors)} restore errors)"
        )
        context.log.info(f"{db.name}: backup {report.backup} {verdict}")
        return dg.MaterializeResult(
            metadata={**restore_metadata(report), "chosen_because": dg.MetadataValue.text(why)},
            check_results=[
                dg.AssetCheckResult(
                    check_name="restore_verified",
                    passed=report.passed,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=_describe(report),
                    metadata={
                        "backup": report.backup,
                        "mismatches": len(report.mismatches),
                        "restore_errors": len(report.restore_errors),
                    },
                )
            ],
        )

    @fleet_check(
        "restore_test",
        "restore_recent",
        fleet,
        description="A backup of the database passed a restore test within its restore_test.max_age.",
    )
    def restore_recent(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        db = fleet.database(context.partition_key)
        now = dt.datetime.now(dt.UTC)
        max_age = db.restore_test.max_age.to_timedelta()
        return check_result(recent_restore(newest_verified_stamp(storage, db.name), max_age, now))

    return dg.Definitions(assets=[restore_test], asset_checks=[restore_recent])


def _describe(report: RestoreReport) -> str:
    if report.passed:
        return f"{report.tables_checked} tables, {report.rows_checked:,} rows match the manifest of {report.backup}"
    problems = report.restore_errors[:2] + [f"{m.table}: {m.problem}" for m in report.mismatches[:3]]
    return f"backup {report.backup}: " + "; ".join(problems)


def restore_metadata(report: RestoreReport) -> dict:
    mismatch_rows = [
        dg.TableRecord(
            {"table": m.table, "expected_rows": m.expected_rows, "restored_rows": m.restored_rows, "problem": m.problem}
        )
        for m in report.mismatches
    ]
    return {
        "backup": dg.MetadataValue.text(report.backup),
        "sandbox": dg.MetadataValue.text(report.sandbox),
        "passed": dg.MetadataValue.bool(report.passed),
        "restore_seconds": dg.MetadataValue.float(round(report.restore_seconds, 3)),
        "verify_seconds": dg.MetadataValue.float(round(report.verify_seconds, 3)),
        "tables_checked": dg.MetadataValue.int(report.tables_checked),
        "rows_checked": dg.MetadataValue.int(report.rows_checked),
        "sanity_queries_passed": dg.MetadataValue.int(report.sanity_queries_passed),
        "restore_errors": dg.MetadataValue.md("\n".join(f"- {md_cell(e)}" for e in report.restore_errors) or "none"),
        "mismatches": dg.MetadataValue.table(
            mismatch_rows,
            schema=dg.TableSchema(
                columns=[
                    dg.TableColumn("table", "string"),
                    dg.TableColumn("expected_rows", "int"),
                    dg.TableColumn("restored_rows", "int"),
                    dg.TableColumn("problem", "string"),
                ]
            ),
        ),
    }
