"""Traffic and errors: the last 7 days against the 7 before, and the daily table."""

from ops_pipelines.core.report.blocks import Block, Heading, Para, Table
from ops_pipelines.core.report.formatting import count
from ops_pipelines.core.report.model import DatabaseReport, Report
from ops_pipelines.core.report.traffic import week_over_week
from ops_pipelines.localtime import zone
from ops_pipelines.units import format_bytes


def traffic(report: Report, db: DatabaseReport) -> list[Block]:
    """Traffic and errors, day by day from the capacity samples' counters."""
    blocks: list[Block] = [Heading(3, "Traffic and errors")]
    if db.traffic is None:
        return blocks + [Para("Not recorded: daily counters come with the capacity samples (set metrics.dsn).")]
    if not db.traffic:
        return blocks + [Para("No two capacity samples yet: daily traffic starts with the second sample.")]
    this, last = week_over_week(db.traffic, report.generated_at.astimezone(zone(report.timezone)).date())
    if last.transactions:
        change = (this.transactions - last.transactions) / last.transactions
        blocks.append(
            Para(
                f"Last 7 days against the 7 before: {this.transactions:,} transactions ({change:+.1%}), rollback rate "
                f"{this.rollback_ratio:.2%} (was {last.rollback_ratio:.2%}), {count(this.deadlocks, 'deadlock')} "
                f"(was {last.deadlocks:,}), "
                f"{format_bytes(this.temp_bytes)} of temporary files (was {format_bytes(last.temp_bytes)}).",
                "warn"
                if this.deadlocks > last.deadlocks or this.rollback_ratio > 2 * last.rollback_ratio + 0.001
                else None,
            )
        )
    blocks.append(
        Table(
            ["day", "transactions", "rolled back", "deadlocks", "temporary files"],
            [
                [
                    d.day.isoformat(),
                    d.transactions,
                    f"{d.rollbacks:,} ({d.rollback_ratio:.2%})",
                    d.deadlocks,
                    format_bytes(d.temp_bytes),
                ]
                for d in db.traffic[-14:]
            ],
            numeric=frozenset({1, 2, 3, 4}),
        )
    )
    return blocks
