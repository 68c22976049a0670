"""`integrity` (partitioned by database): amcheck of every btree index (and table, with
`integrity.heap`), weekly at `schedules.integrity` — in the database's own slot: the run queue
admits one run per database at a time. Check `amcheck_clean` fails naming each corrupt relation.
"""

import dagster as dg

from ops_pipelines.capabilities.common import fleet_asset, fleet_check_spec, retry_if_transient
from ops_pipelines.capability import Capability, Fleets
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.maintenance.integrity import check_integrity
from ops_pipelines.units import format_bytes


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    fleet = fleets["integrity"]

    @fleet_asset(
        capability,
        "integrity",
        fleet,
        check_specs=[
            fleet_check_spec(
                "integrity",
                "amcheck_clean",
                fleet,
                description="amcheck found no corruption in any btree index (nor table, with integrity.heap).",
            )
        ],
        description="amcheck's bt_index_check of every btree index (and verify_heapam of every table with "
        f"integrity.heap, PostgreSQL 14+), at {config.schedules.integrity} ({config.timezone}). Read-only "
        "(AccessShareLock): the ERP keeps working; each relation has integrity.index_timeout.",
    )
    def integrity(context: dg.AssetExecutionContext):
        db = fleet.database(context.partition_key)
        with retry_if_transient():
            report = check_integrity(db)
        if report.missing_extension:
            yield dg.AssetCheckResult(
                check_name="amcheck_clean",
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=report.missing_extension
                if report.missing_extension.startswith("not checked")
                else f"not checked: {report.missing_extension}",
            )
        elif report.corrupt or report.timed_out:
            yield dg.AssetCheckResult(
                check_name="amcheck_clean",
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR if report.corrupt else dg.AssetCheckSeverity.WARN,
                description=describe_findings(report.corrupt, report.timed_out),
                metadata={"corrupt": len(report.corrupt), "timed_out": len(report.timed_out)},
            )
        else:
            yield dg.AssetCheckResult(
                check_name="amcheck_clean",
                passed=True,
                description=f"{report.indexes_checked} indexes"
                + (f" and {report.tables_checked} tables" if report.tables_checked else "")
                + f" checked ({format_bytes(report.bytes_checked)}): no corruption",
            )
        context.log.info(
            f"{db.name}: amcheck of {report.indexes_checked} indexes, {report.tables_checked} tables in "
            f"{report.seconds:.1f} s; {len(report.corrupt)} corrupt, {len(report.timed_out)} timed out"
            + (f"; {report.heap_skipped}" if report.heap_skipped else "")
        )
        yield dg.MaterializeResult(
            metadata={
                "indexes_checked": dg.MetadataValue.int(report.indexes_checked),
                "tables_checked": dg.MetadataValue.int(report.tables_checked),
                "bytes_checked": dg.MetadataValue.int(report.bytes_checked),
                "corrupt": dg.MetadataValue.md("\n".join(f"- {c}" for c in report.corrupt) or "none"),
                "timed_out": dg.MetadataValue.int(len(report.timed_out)),
                "seconds": dg.MetadataValue.float(round(report.seconds, 2)),
                **(
                    {"not_checked": dg.MetadataValue.text(report.missing_extension)} if report.missing_extension else {}
                ),
            }
        )

    return dg.Definitions(assets=[integrity])


def describe_findings(corrupt: list[str], timed_out: list[str]) -> str:
    """Every relation named once, with its first finding and how many more: findings are not relations
    (verify_heapam reports each damaged item of a table)."""
    by_relation: dict[str, list[str]] = {}
    for finding in corrupt:
        relation, _, what = finding.partition(": ")
        by_relation.setdefault(relation, []).append(what)
    parts = [
        f"{relation}: {found[0]}" + (f" (and {len(found) - 1} more findings)" if len(found) > 1 else "")
        for relation, found in by_relation.items()
    ]
    parts += [name if ": " in name else f"{name}: timed out" for name in timed_out]
    findings = f"; {len(corrupt)} findings" if len(corrupt) != len(by_relation) else ""
    head = f"{len(by_relation)} corrupt relations{findings}" if by_relation else "no corruption found"
    if timed_out:
        head += f", {len(timed_out)} not checked"
    return f"{head}: " + "; ".join(parts)
