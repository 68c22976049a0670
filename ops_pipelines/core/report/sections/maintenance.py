"""Vacuum, reindex and archival runs of the week, with their figures."""

from ops_pipelines.core.report.blocks import Block, Heading, Link, Para, Table
from ops_pipelines.core.report.formatting import local
from ops_pipelines.core.report.model import DatabaseReport, Report


def maintenance(report: Report, db: DatabaseReport) -> list[Block]:
    """Vacuum, reindex and archival runs of the week, with their figures."""
    tz = report.timezone
    blocks: list[Block] = []
    blocks.append(Heading(3, "Maintenance this week"))
    if db.maintenance:
        blocks.append(
            Table(
                ["when", "action", "figures"],
                [
                    [
                        Link(local(a.at, tz), report.run_url(a.run_id)),
                        a.asset,
                        "; ".join(f"{k}: {v}" for k, v in a.figures),
                    ]
                    for a in db.maintenance
                ],
            )
        )
    else:
        blocks.append(Para("No vacuum, reindex or archival ran this week.", "warn"))
    return blocks
