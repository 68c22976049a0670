"""Checks failing now, checks that failed this week, and runs that failed this week."""

from ops_pipelines.core.report.blocks import Block, Link, Para, Table
from ops_pipelines.core.report.formatting import count, local
from ops_pipelines.core.report.model import DatabaseReport, Report


def checks(report: Report, db: DatabaseReport) -> list[Block]:
    """Checks failing now, checks failed this week, runs failed this week."""
    tz = report.timezone
    blocks: list[Block] = []
    if db.failing_now:
        blocks.append(Para(f"{count(len(db.failing_now), 'check')} failing now:", "bad"))
        blocks.append(
            Table(
                ["check", "severity", "why"],
                [[f"{c.asset} {c.check}", c.severity, c.description] for c in db.failing_now],
            )
        )
    if db.failed_checks:
        blocks.append(Para(f"{count(len(db.failed_checks), 'failed check')} this week:", "bad"))
        blocks.append(
            Table(
                ["when", "check", "severity", "why"],
                [
                    [
                        Link(local(c.at, tz), report.run_url(c.run_id)),
                        f"{c.asset} {c.check}",
                        c.severity,
                        c.description,
                    ]
                    for c in db.failed_checks
                ],
            )
        )
    else:
        blocks.append(Para("No check failed this week.", "good"))
    if db.failed_runs:
        blocks.append(Para(f"{count(len(db.failed_runs), 'failed run')} this week:", "bad"))
        blocks.append(
            Table(
                ["when", "run of", "cause"],
                [[Link(local(r.at, tz), report.run_url(r.run_id)), r.what, r.cause] for r in db.failed_runs],
            )
        )
    return blocks
