"""Performance, schema health and security, as the live reads of the database found them."""

import datetime as dt

from ops_pipelines.core.report.blocks import Block, Bullets, Heading, Para, Table
from ops_pipelines.core.report.formatting import age_text, cell, count, percent
from ops_pipelines.core.report.live_reads import DatabaseHealth
from ops_pipelines.core.report.model import DatabaseReport, Report
from ops_pipelines.units import format_bytes


def performance_schema_security(report: Report, db: DatabaseReport) -> list[Block]:
    """Performance, schema health and security, read live from the database (or why not)."""
    if db.health is None:
        return [Heading(3, "Performance, schema health, security"), Para(f"Not read: {db.unreachable}", "bad")]
    return _performance(db.health) + _schema(db.health) + _security(db.health, report.timezone)


def _performance(health: DatabaseHealth) -> list:
    perf = health.performance
    blocks: list[Block] = [Heading(3, "Performance")]
    a = perf.activity
    if a:
        total = (a["commits"] or 0) + (a["rollbacks"] or 0)
        usable = a["max_connections"] - a["reserved_connections"]
        blocks.append(
            Bullets(
                [
                    f"Cache hit ratio: {percent(a['cache_hit_percent'])} (below 99% on an OLTP database means reads "
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
                        [r["query"], r["calls"], r["mean_ms"], r["total_ms"], r["rows"], percent(r["hit_percent"])]
                        for r in rows
                    ],
                    numeric=frozenset({1, 2, 3, 4, 5}),
                )
                if rows
                else Para("No statements recorded yet.")
            )
    if perf.long_sessions:
        blocks.append(Para(f"{count(len(perf.long_sessions), 'long-running or idle-in-transaction session')}:", "warn"))
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
                        age_text(dt.timedelta(seconds=s["seconds"])),
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


def _schema(health: DatabaseHealth) -> list:
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
                        percent(t["hot_update_percent"]),
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
                f"{count(len(schema.unused_indexes), 'index', 'indexes')} never scanned and backing no constraint "
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
        blocks.append(Para(f"{count(len(schema.duplicate_indexes), 'set')} of duplicate indexes:", "warn"))
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
        blocks.append(Para(f"{count(len(schema.tables_without_pk), 'table')} without a primary key:", "warn"))
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


def _security(health: DatabaseHealth, tz: str) -> list:
    security = health.security
    blocks: list[Block] = [Heading(3, "Security")]
    if security.note:
        return blocks + [Para(security.note, "warn")]
    if not security.accounts:
        return blocks + [Para("No account over the failed-login threshold in the last 7 days.", "good")]
    columns = list(security.accounts[0])
    blocks.append(
        Para(f"{count(len(security.accounts), 'account')} over the failed-login threshold in the last 7 days:", "bad")
    )
    blocks.append(
        Table(
            columns,
            [[cell(row[c], tz) for c in columns] for row in security.accounts],
            numeric=frozenset(i for i, c in enumerate(columns) if isinstance(security.accounts[0][c], int)),
        )
    )
    return blocks
