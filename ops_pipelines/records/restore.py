"""What `restore_test` and `offsite_restore_test` materializations record: the one writer, and the
reader the report uses for "proven restorable, and in how long"."""

from dataclasses import dataclass

import dagster as dg

from ops_pipelines.core.backups.restore import RestoreReport
from ops_pipelines.markdown import md_cell
from ops_pipelines.records.metadata import table, value


@dataclass(frozen=True)
class RestoreTestRecord:
    """The figures a reader takes from one restore test (local or off-site drill)."""

    backup: str | None
    passed: bool
    restore_seconds: float | None

    @staticmethod
    def to_metadata(report: RestoreReport) -> dict:
        mismatch_rows = [
            {
                "table": m.table,
                "expected_rows": m.expected_rows,
                "restored_rows": m.restored_rows,
                "problem": m.problem,
            }
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
            "owners_checked": dg.MetadataValue.bool(report.owners_checked),
            "restore_errors": dg.MetadataValue.md(
                "\n".join(f"- {md_cell(e)}" for e in report.restore_errors) or "none"
            ),
            "mismatches": table(
                mismatch_rows, table="string", expected_rows="int", restored_rows="int", problem="string"
            ),
        }

    @classmethod
    def from_metadata(cls, metadata) -> "RestoreTestRecord":
        backup = value(metadata, "backup")
        seconds = value(metadata, "restore_seconds")
        return cls(
            backup=str(backup) if backup is not None else None,
            passed=bool(value(metadata, "passed", False)),
            restore_seconds=float(seconds) if seconds is not None else None,
        )
