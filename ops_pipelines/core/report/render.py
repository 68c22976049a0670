"""The weekly report as blocks: the header and summary table, then per database its heading, what
needs attention, and each section of `sections.SECTIONS` in turn. blocks.py writes them as HTML
(self-contained: styles inline, charts as data URIs, no script, no fetch) and as Markdown.
"""

from ops_pipelines.core.report.blocks import Block, Heading, Image, Link, Para, Table, render_html, render_markdown
from ops_pipelines.core.report.charts import backup_trend_chart
from ops_pipelines.core.report.formatting import age_text, count, failed_text, local, seconds, verified_text
from ops_pipelines.core.report.model import DatabaseReport, Report
from ops_pipelines.core.report.sections import SECTIONS

__all__ = ["Image", "backup_trend_chart", "render_html", "render_markdown", "report_blocks"]


def report_blocks(report: Report) -> list:
    tz = report.timezone
    now = report.generated_at
    blocks: list[Block] = [
        Heading(1, "Weekly maintenance report"),
        Para(
            f"Week {local(report.week_start, tz)} to {local(now, tz)} ({report.timezone}); "
            f"{count(len(report.databases), 'database')}."
        ),
        Heading(2, "Summary", "summary"),
        Table(
            [
                "database",
                "needs attention",
                "newest backup",
                "proven restorable",
                "restore time",
                "failed checks",
                "maintenance actions",
            ],
            [
                [
                    Link(db.name, f"#db-{db.name}"),
                    "; ".join(db.attention(now)) or "nothing",
                    age_text(db.recovery.backup_age(now)),
                    verified_text(db.recovery, now),
                    seconds(db.recovery.verified.restore_seconds if db.recovery.verified else None),
                    failed_text(db),
                    len(db.maintenance),
                ]
                for db in report.databases
            ],
            numeric=frozenset({5, 6}),
        ),
    ]
    for db in report.databases:
        blocks += _database_blocks(report, db)
    return blocks


def _database_blocks(report: Report, db: DatabaseReport) -> list[Block]:
    now = report.generated_at
    attention = db.attention(now)
    blocks: list[Block] = [Heading(2, db.name, f"db-{db.name}")]
    if db.description:
        blocks.append(Para(db.description))
    blocks.append(
        Para(
            "Needs attention: " + "; ".join(attention) if attention else "Nothing needs attention.",
            "bad" if attention else "good",
        )
    )

    for section in SECTIONS:
        blocks += section(report, db)
    return blocks
