"""The Recovery section: the newest backup and its trend, the newest proven restorable, the
off-site drill, and the restore tests of the week."""

from ops_pipelines.core.backups.catalog import stamp_time
from ops_pipelines.core.report.blocks import Block, Bullets, Heading, Image, Link, Para, Table
from ops_pipelines.core.report.formatting import age_text, count, local, seconds
from ops_pipelines.core.report.model import DatabaseReport, Report
from ops_pipelines.units import format_bytes


def recovery(report: Report, db: DatabaseReport) -> list[Block]:
    """Newest backup and its trend, newest proven restorable, the off-site drill, this week's restore tests."""
    tz = report.timezone
    now = report.generated_at
    blocks: list[Block] = []
    blocks.append(Heading(3, "Recovery"))
    status = db.recovery
    if status.newest_backup:
        trend = status.trend_ratio
        blocks.append(
            Bullets(
                [
                    f"Newest backup: {local(status.newest_backup_at, tz)}, {age_text(status.backup_age(now))} ago, "
                    f"{format_bytes(status.newest_backup_bytes or 0)} (limit {age_text(db.max_backup_age)}).",
                    count(len(status.recent_sizes), "backup")
                    + " in the last 30 days"
                    + (
                        f"; size {'+' if trend >= 1 else ''}{(trend - 1) * 100:.1f}% over the period." if trend else "."
                    ),
                    *(
                        [f"{count(status.incomplete, 'incomplete backup')} (a dump without a manifest)."]
                        if status.incomplete
                        else []
                    ),
                ]
            )
        )
        blocks.append(Image(f"backup_trend_{db.name}.png", f"{db.name}: backup sizes over 30 days"))
    else:
        blocks.append(Para("No complete backup exists.", "bad"))
    verified = status.verified
    if verified:
        blocks.append(
            Para(
                f"Newest backup proven restorable: {verified.backup}"
                + (f", tested {local(verified.finished_at, tz)}" if verified.finished_at else "")
                + (f", restored in {seconds(verified.restore_seconds)}" if verified.restore_seconds is not None else "")
                + (f" ({verified.sandbox})." if verified.sandbox else ".")
            )
        )
    else:
        blocks.append(
            Para(
                "No backup of this database stands proven restorable (every proof was withdrawn)."
                if status.withdrawn
                else "No backup of this database has ever passed a restore test.",
                "bad",
            )
        )
    if status.problem:
        blocks.append(Para(status.problem, "warn"))
    if db.max_offsite_age is not None:
        drill = db.offsite_drill
        if drill is None:
            blocks.append(Para("No off-site (S3) backup of this database has passed the drill yet.", "bad"))
        else:
            stale = now - stamp_time(drill.backup) > db.max_offsite_age
            blocks.append(
                Para(
                    f"Newest off-site drill: backup {drill.backup} read from S3, restored and verified "
                    f"{local(drill.at, tz)}"
                    + (f" in {seconds(drill.restore_seconds)}" if drill.restore_seconds is not None else "")
                    + (f"; older than its limit of {age_text(db.max_offsite_age)}." if stale else "."),
                    "bad" if stale else None,
                )
            )
    if db.restore_tests:
        blocks.append(
            Table(
                ["restore test", "backup", "result", "restore time"],
                [
                    [
                        Link(local(t.at, tz), report.run_url(t.run_id)),
                        t.backup,
                        "passed" if t.passed else "FAILED",
                        seconds(t.restore_seconds),
                    ]
                    for t in db.restore_tests
                ],
                numeric=frozenset({3}),
            )
        )
    return blocks
