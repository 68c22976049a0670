"""The report as HTML (self-contained: styles inline, charts as data URIs, no script, no fetch) and
as Markdown. The content is laid out once as blocks (headings, paragraphs, tables, images); two
small writers turn the blocks into each format, so the twins never drift apart.
"""

import base64
import datetime as dt
import html
import io
from collections.abc import Callable
from dataclasses import dataclass

from ops_pipelines.core.backups.catalog import stamp_time
from ops_pipelines.core.backups.recovery_status import RecoveryStatus
from ops_pipelines.core.report.live_reads import DatabaseHealth
from ops_pipelines.core.report.model import DatabaseReport, Report
from ops_pipelines.core.report.traffic import week_over_week
from ops_pipelines.localtime import local_time, zone
from ops_pipelines.markdown import md_text
from ops_pipelines.units import format_bytes

# ---------------------------------------------------------------------------- blocks


@dataclass(frozen=True)
class Link:
    text: str
    url: str | None  # None: shown as plain text


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str | None = None


@dataclass(frozen=True)
class Para:
    text: str
    tone: str | None = None  # "bad", "warn", "good": coloured in HTML, a marker in Markdown


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[object]]  # str, int, float or Link
    numeric: frozenset[int] = frozenset()  # right-aligned columns


@dataclass(frozen=True)
class Image:
    name: str  # a file name in the reports folder, and the key of its bytes
    alt: str


Block = Heading | Para | Bullets | Table | Image


# ---------------------------------------------------------------------------- content


def report_blocks(report: Report) -> list:
    tz = report.timezone
    now = report.generated_at
    blocks: list[Block] = [
        Heading(1, "Weekly maintenance report"),
        Para(
            f"Week {_local(report.week_start, tz)} to {_local(now, tz)} ({report.timezone}); "
            f"{_count(len(report.databases), 'database')}."
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
                    _age_text(db.recovery.backup_age(now)),
                    _verified_text(db.recovery, now),
                    _seconds(db.recovery.verified.restore_seconds if db.recovery.verified else None),
                    _failed_text(db),
                    len(db.maintenance),
                ]
                for db in report.databases
            ],
            numeric=frozenset({5, 6}),
        ),
    ]
    for db in report.databases:
        blocks += _database_blocks(report, db, tz)
    return blocks


def _database_blocks(report: Report, db: DatabaseReport, tz: str) -> list:
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

    blocks.append(Heading(3, "Recovery"))
    status = db.recovery
    if status.newest_backup:
        trend = status.trend_ratio
        blocks.append(
            Bullets(
                [
                    f"Newest backup: {_local(status.newest_backup_at, tz)}, {_age_text(status.backup_age(now))} ago, "
                    f"{format_bytes(status.newest_backup_bytes or 0)} (limit {_age_text(db.max_backup_age)}).",
                    _count(len(status.recent_sizes), "backup")
                    + " in the last 30 days"
                    + (
                        f"; size {'+' if trend >= 1 else ''}{(trend - 1) * 100:.1f}% over the period." if trend else "."
                    ),
                    *(
                        [f"{_count(status.incomplete, 'incomplete backup')} (a dump without a manifest)."]
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
                + (f", tested {_local(verified.finished_at, tz)}" if verified.finished_at else "")
                + (
                    f", restored in {_seconds(verified.restore_seconds)}"
                    if verified.restore_seconds is not None
                    else ""
                )
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
                    f"{_local(drill.at, tz)}"
                    + (f" in {_seconds(drill.restore_seconds)}" if drill.restore_seconds is not None else "")
                    + (f"; older than its limit of {_age_text(db.max_offsite_age)}." if stale else "."),
                    "bad" if stale else None,
                )
            )
    if db.restore_tests:
        blocks.append(
            Table(
                ["restore test", "backup", "result", "restore time"],
                [
                    [
                        Link(_local(t.at, tz), report.run_url(t.run_id)),
                        t.backup,
                        "passed" if t.passed else "FAILED",
                        _seconds(t.restore_seconds),
                    ]
                    for t in db.restore_tests
                ],
                numeric=frozenset({3}),
            )
        )
    if db.failing_now:
        blocks.append(Para(f"{_count(len(db.failing_now), 'check')} failing now:", "bad"))
        blocks.append(
            Table(
                ["check", "severity", "why"],
                [[f"{c.asset} {c.check}", c.severity, c.description] for c in db.failing_now],
            )
        )
    if db.failed_checks:
        blocks.append(Para(f"{_count(len(db.failed_checks), 'failed check')} this week:", "bad"))
        blocks.append(
            Table(
                ["when", "check", "severity", "why"],
                [
                    [
                        Link(_local(c.at, tz), report.run_url(c.run_id)),
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
        blocks.append(Para(f"{_count(len(db.failed_runs), 'failed run')} this week:", "bad"))
        blocks.append(
            Table(
                ["when", "run of", "cause"],
                [[Link(_local(r.at, tz), report.run_url(r.run_id)), r.what, r.cause] for r in db.failed_runs],
            )
        )

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
                            _local(e.started, tz),
                            _local(e.ended, tz) if e.ended else "still failing",
                            e.description,
                        ]
                        for e in db.health_episodes
                    ],
                )
            )

    blocks.append(Heading(3, "Maintenance this week"))
    if db.maintenance:
        blocks.append(
            Table(
                ["when", "action", "figures"],
                [
                    [
                        Link(_local(a.at, tz), report.run_url(a.run_id)),
                        a.asset,
                        "; ".join(f"{k}: {v}" for k, v in a.figures),
                    ]
                    for a in db.maintenance
                ],
            )
        )
    else:
        blocks.append(Para("No vacuum, reindex or archival ran this week.", "warn"))

    blocks.append(Heading(3, "Capacity"))
    capacity = db.capacity
    if capacity.note:
        blocks.append(Para(capacity.note))
    if capacity.chart:
        blocks.append(Image(capacity.chart.name, f"{db.name}: capacity forecast"))
    if capacity.figures:
        blocks.append(Bullets([f"{label}: {value}" for label, value in capacity.figures]))
    if capacity.headroom:
        blocks.append(Para(f"Headroom check: {capacity.headroom}"))

    blocks += _traffic_blocks(db, report.generated_at.astimezone(zone(tz)).date())

    if db.health is None:
        blocks.append(Heading(3, "Performance, schema health, security"))
        blocks.append(Para(f"Not read: {db.unreachable}", "bad"))
        return blocks
    blocks += _performance_blocks(db.health)
    blocks += _schema_blocks(db.health)
    blocks += _security_blocks(db.health, tz)
    return blocks


def _traffic_blocks(db: DatabaseReport, today: dt.date) -> list:
    blocks: list[Block] = [Heading(3, "Traffic and errors")]
    if db.traffic is None:
        return blocks + [Para("Not recorded: daily counters come with the capacity samples (set metrics.dsn).")]
    if not db.traffic:
        return blocks + [Para("No two capacity samples yet: daily traffic starts with the second sample.")]
    this, last = week_over_week(db.traffic, today)
    if last.transactions:
        change = (this.transactions - last.transactions) / last.transactions
        blocks.append(
            Para(
                f"Last 7 days against the 7 before: {this.transactions:,} transactions ({change:+.1%}), rollback rate "
                f"{this.rollback_ratio:.2%} (was {last.rollback_ratio:.2%}), {_count(this.deadlocks, 'deadlock')} "
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


def _performance_blocks(health: DatabaseHealth) -> list:
    perf = health.performance
    blocks: list[Block] = [Heading(3, "Performance")]
    a = perf.activity
    if a:
        total = (a["commits"] or 0) + (a["rollbacks"] or 0)
        usable = a["max_connections"] - a["reserved_connections"]
        blocks.append(
            Bullets(
                [
                    f"Cache hit ratio: {_percent(a['cache_hit_percent'])} (below 99% on an OLTP database means reads "
                    "go to disk).",
                    f"Connections: {a['connections']} of max_connections {a['max_connections']} "
                    f"({a['connections'] / max(usable, 1):.0%} of the {usable} usable); {a['database_connections']} "
                    "to this database.",
                    f"Transactions: {total:,}, of which {a['rollbacks'] or 0:,} rolled back "
                    f"({(a['rollbacks'] or 0) / max(total, 1):.1%}); "
                    f"{a['deadlocks'] or 0} deadlocks; {format_bytes(a['temp_bytes'] or 0)} of temporary files"
                    + (
                        f" (since {a['stats_reset']:%Y-%m-%d})."
                        if a.get("stats_reset")
                        else " (since the server's statistics began)."
                    ),
                ]
            )
        )
    if perf.statements_note:
        blocks.append(Para(perf.statements_note, "warn"))
    for title, rows in (
        ("Top 10 statements by mean time", perf.top_by_mean),
        ("Top 10 statements by total time", perf.top_by_total),
    ):
        if perf.statements_note is None:
            blocks.append(Para(f"{title}:"))
            blocks.append(
                Table(
                    ["statement", "calls", "mean ms", "total ms", "rows", "cache hit"],
                    [
                        [r["query"], r["calls"], r["mean_ms"], r["total_ms"], r["rows"], _percent(r["hit_percent"])]
                        for r in rows
                    ],
                    numeric=frozenset({1, 2, 3, 4, 5}),
                )
                if rows
                else Para("No statements recorded yet.")
            )
    if perf.long_sessions:
        blocks.append(
            Para(f"{_count(len(perf.long_sessions), 'long-running or idle-in-transaction session')}:", "warn")
        )
        blocks.append(
            Table(
                ["pid", "user", "application", "client", "state", "for", "statement"],
                [
                    [
                        str(s["pid"]),
                        s["username"],
                        s["application_name"],
                        s["client"] or "local",
                        s["state"],
                        _age_text(dt.timedelta(seconds=s["seconds"])),
                        s["query"],
                    ]
                    for s in perf.long_sessions
                ],
            )
        )
    else:
        blocks.append(Para("No long-running or idle-in-transaction session at report time."))
    blocks += [Para(note, "warn") for note in perf.notes]
    return blocks


def _schema_blocks(health: DatabaseHealth) -> list:
    schema = health.schema
    blocks: list[Block] = [Heading(3, "Schema health")]
    if schema.largest_tables:
        blocks.append(Para("Largest tables:"))
        blocks.append(
            Table(
                ["table", "total", "heap", "indexes", "TOAST"],
                [
                    [
                        t["table_name"],
                        format_bytes(t["total_bytes"]),
                        format_bytes(t["table_bytes"]),
                        format_bytes(t["index_bytes"]),
                        format_bytes(t["toast_bytes"]),
                    ]
                    for t in schema.largest_tables
                ],
                numeric=frozenset({1, 2, 3, 4}),
            )
        )
    if schema.most_written:
        blocks.append(Para("Most written tables (since the statistics were reset):"))
        blocks.append(
            Table(
                ["table", "inserts", "updates", "HOT updates", "deletes", "live rows"],
                [
                    [
                        t["table_name"],
                        t["inserts"],
                        t["updates"],
                        _percent(t["hot_update_percent"]),
                        t["deletes"],
                        t["live_rows"],
                    ]
                    for t in schema.most_written
                ],
                numeric=frozenset({1, 2, 3, 4, 5}),
            )
        )
    if schema.unused_indexes:
        size = sum(i["index_bytes"] for i in schema.unused_indexes)
        blocks.append(
            Para(
                f"{_count(len(schema.unused_indexes), 'index', 'indexes')} never scanned and backing no constraint "
                f"({format_bytes(size)}); check replicas before dropping:",
                "warn",
            )
        )
        blocks.append(
            Table(
                ["index", "table", "size"],
                [[i["index_name"], i["table_name"], format_bytes(i["index_bytes"])] for i in schema.unused_indexes],
                numeric=frozenset({2}),
            )
        )
    else:
        blocks.append(Para("No unused index.", "good"))
    if schema.duplicate_indexes:
        blocks.append(Para(f"{_count(len(schema.duplicate_indexes), 'set')} of duplicate indexes:", "warn"))
        blocks.append(
            Table(
                ["table", "indexes", "wasted"],
                [
                    [d["table_name"], ", ".join(d["indexes"]), format_bytes(d["wasted_bytes"])]
                    for d in schema.duplicate_indexes
                ],
                numeric=frozenset({2}),
            )
        )
    else:
        blocks.append(Para("No duplicate indexes.", "good"))
    if schema.tables_without_pk:
        blocks.append(Para(f"{_count(len(schema.tables_without_pk), 'table')} without a primary key:", "warn"))
        blocks.append(
            Table(
                ["table", "rows (estimate)", "size"],
                [
                    [t["table_name"], t["estimated_rows"], format_bytes(t["total_bytes"])]
                    for t in schema.tables_without_pk
                ],
                numeric=frozenset({1, 2}),
            )
        )
    else:
        blocks.append(Para("Every table has a primary key.", "good"))
    blocks += [Para(note, "warn") for note in schema.notes]
    return blocks


def _security_blocks(health: DatabaseHealth, tz: str) -> list:
    security = health.security
    blocks: list[Block] = [Heading(3, "Security")]
    if security.note:
        return blocks + [Para(security.note, "warn")]
    if not security.accounts:
        return blocks + [Para("No account over the failed-login threshold in the last 7 days.", "good")]
    columns = list(security.accounts[0])
    blocks.append(
        Para(f"{_count(len(security.accounts), 'account')} over the failed-login threshold in the last 7 days:", "bad")
    )
    blocks.append(
        Table(
            columns,
            [[_cell(row[c], tz) for c in columns] for row in security.accounts],
            numeric=frozenset(i for i, c in enumerate(columns) if isinstance(security.accounts[0][c], int)),
        )
    )
    return blocks


# ---------------------------------------------------------------------------- Markdown


def render_markdown(blocks: list[Block], with_images: bool = True, inline: dict[str, bytes] | None = None) -> str:
    """The Markdown report. Images: a relative link beside the file (`with_images`), or, for the Dagster
    UI where a relative link cannot resolve, the PNG itself as a data URI when it is in `inline`, else
    a note pointing at the HTML report."""
    out = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {md_text(block.text)}")
        elif isinstance(block, Para):
            marker = {"bad": "**✗** ", "warn": "**!** ", "good": "✓ "}.get(block.tone or "", "")
            out.append(marker + md_text(block.text))
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {md_text(item)}" for item in block.items))
        elif isinstance(block, Table):
            align = ["---:" if i in block.numeric else "---" for i in range(len(block.headers))]
            lines = ["| " + " | ".join(_md_cell(h) for h in block.headers) + " |", "|" + "|".join(align) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines))
        elif isinstance(block, Image):
            if inline is not None and block.name in inline:
                data = base64.b64encode(inline[block.name]).decode()
                out.append(f"![{md_text(block.alt)}](data:image/png;base64,{data})")
            elif with_images and inline is None:
                out.append(f"![{md_text(block.alt)}]({block.name})")
            else:
                out.append(f"_Chart {block.name}: see the HTML report._")
    return "\n\n".join(out) + "\n"


def _md_cell(value: object) -> str:
    if isinstance(value, Link):
        text = md_text(value.text).replace("\n", " ")
        return f"[{text}]({value.url})" if value.url else text
    return md_text(_plain(value)).replace("\n", " ")


# ---------------------------------------------------------------------------- HTML

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;
color:#1b1f24;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2rem;margin-top:2.5rem}h3{margin-top:1.6rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem;width:100%}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;vertical-align:top;text-align:left}
th{background:#f6f8fa}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}td{word-break:break-word}
p.bad{color:#b42318;font-weight:600}p.warn{color:#9a6700}p.good{color:#1a7f37}
img{max-width:100%;height:auto;border:1px solid #d0d7de;margin:.4rem 0}
"""


def render_html(
    blocks: list[Block], images: dict[str, bytes], title: str, image_src: Callable[[str, bytes], str] | None = None
) -> str:
    """`images`: PNG bytes by file name; an image without bytes is left out with a sentence.
    `image_src`: where an image comes from (default: inline, a data URI; e-mail uses `cid:`)."""
    out = [
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        '<meta name="viewport" content="width=device-width, '
        f'initial-scale=1">\n<style>{_STYLE}</style>\n</head>\n<body>'
    ]
    for block in blocks:
        if isinstance(block, Heading):
            anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
            out.append(f"<h{block.level}{anchor}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            tone = f' class="{block.tone}"' if block.tone else ""
            out.append(f"<p{tone}>{html.escape(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th{_num(i, block)}>{html.escape(h)}</th>" for i, h in enumerate(block.headers))
            body = "".join(
                "<tr>" + "".join(f"<td{_num(i, block)}>{_html_cell(c)}</td>" for i, c in enumerate(row)) + "</tr>"
                for row in block.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Image):
            data = images.get(block.name)
            if data is None:
                out.append(f"<p>Chart {html.escape(block.name)} is not available.</p>")
            else:
                source = (
                    image_src(block.name, data)
                    if image_src
                    else "data:image/png;base64," + base64.b64encode(data).decode()
                )
                out.append(f'<img src="{source}" alt="{html.escape(block.alt)}">')
    out.append("</body>\n</html>\n")
    return "\n".join(out)


def _num(index: int, table: Table) -> str:
    return ' class="n"' if index in table.numeric else ""


def _html_cell(value: object) -> str:
    if isinstance(value, Link):
        if value.url:
            return f'<a href="{html.escape(value.url)}">{html.escape(value.text)}</a>'
        return html.escape(value.text)
    return html.escape(_plain(value))


# ---------------------------------------------------------------------------- charts and figures


def backup_trend_chart(status: RecoveryStatus, timezone: str, title: str) -> bytes | None:
    """Backup sizes over the trend window as a PNG; None without any backup in it."""
    if not status.recent_sizes:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    tz = zone(timezone)
    figure, axes = plt.subplots(figsize=(9, 2.8), dpi=100)
    times = [moment.astimezone(tz).replace(tzinfo=None) for moment, _ in status.recent_sizes]
    # matplotlib plots datetimes through its units registry; its stubs only know numbers and arrays
    axes.plot(times, [size / 1e6 for _, size in status.recent_sizes], marker="o", markersize=3, color="#1f77b4")  # pyright: ignore[reportArgumentType]
    axes.set_title(title)
    axes.set_ylabel("MB")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _local(moment: dt.datetime | None, timezone: str) -> str:
    return local_time(moment, timezone, with_zone=False) or "never"


def _age_text(age: dt.timedelta | None) -> str:
    if age is None:
        return "never"
    hours = age.total_seconds() / 3600
    if age.total_seconds() < 60:
        return f"{age.total_seconds():.0f} s"
    if hours < 1:
        return f"{age.total_seconds() / 60:.0f} min"
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _verified_text(status: RecoveryStatus, now: dt.datetime) -> str:
    if status.verified is None:
        return "never"
    return f"a backup {_age_text(now - stamp_time(status.verified.backup))} old"


def _failed_text(db: DatabaseReport) -> str:
    warnings = sum(1 for c in db.failed_checks if c.severity == "warning")
    return f"{len(db.failed_checks)}" + (f" ({warnings} warning{'s' if warnings > 1 else ''})" if warnings else "")


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def _percent(value) -> str:
    return "–" if value is None else f"{float(value):.1f}%"


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def _plain(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _cell(value: object, tz: str) -> object:
    return _local(value, tz) if isinstance(value, dt.datetime) else value
