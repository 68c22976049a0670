"""The health probe's failures this week, from start to end."""

from ops_pipelines.core.report.blocks import Block, Heading, Para, Table
from ops_pipelines.core.report.formatting import local
from ops_pipelines.core.report.model import DatabaseReport, Report


def health_week(report: Report, db: DatabaseReport) -> list[Block]:
    """The health probe's failures this week, each from start to end."""
    tz = report.timezone
    blocks: list[Block] = []
    if db.health_episodes is not None:
        blocks.append(Heading(3, "Health this week"))
        if not db.health_episodes:
            blocks.append(Para("No health check failed this week.", "good"))
        else:
            blocks.append(
                Table(
                    ["check", "severity", "from", "to", "what"],
                    [
                        [
                            e.check,
                            e.severity,
                            local(e.started, tz),
                            local(e.ended, tz) if e.ended else "still failing",
                            e.description,
                        ]
                        for e in db.health_episodes
                    ],
                )
            )
    return blocks
