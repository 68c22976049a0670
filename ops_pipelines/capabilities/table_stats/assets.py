"""`table_stats` (partitioned by database): sizes, live/dead tuples and last vacuum/analyze of every table.

It feeds vacuum, reindex and capacity, and gives the UI a per-table view with history.
"""

import dagster as dg

from ops_pipelines.adapters.postgres import describe_dsn
from ops_pipelines.capabilities.common import fleet_asset, retry_if_transient
from ops_pipelines.capability import Capability, Fleets
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.maintenance.table_stats import TableStat, collect_table_stats
from ops_pipelines.localtime import local_time
from ops_pipelines.markdown import md_cell
from ops_pipelines.records.metadata import table, with_sizes
from ops_pipelines.units import format_bytes

TABLE_ROWS_SHOWN = 100  # the UI table lists the largest tables; totals cover all of them

_COLUMNS = {  # the table_stats metadata table, in display order
    "table": "string",
    "total_bytes": "int",
    "index_bytes": "int",
    "live_tuples": "int",
    "dead_tuples": "int",
    "dead_ratio": "float",
    "modified_since_analyze": "int",
    "last_vacuum": "string",
    "last_analyze": "string",
    "xid_age": "int",
}


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    fleet = fleets["table_stats"]

    @fleet_asset(
        capability,
        "table_stats",
        fleet,
        description="Sizes, live/dead tuples and last vacuum/analyze of every table in the database.",
    )
    def table_stats(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        db = fleet.database(context.partition_key)
        with retry_if_transient():
            stats = collect_table_stats(db)
        context.log.info(
            f"{db.name}: read statistics of {len(stats)} tables from {describe_dsn(db.dsn.get_secret_value())}"
        )
        return dg.MaterializeResult(metadata=table_stats_metadata(stats, config.timezone))

    return dg.Definitions(assets=[table_stats])


def table_stats_metadata(stats: list[TableStat], timezone: str) -> dict[str, dg.MetadataValue]:
    live = sum(s.live_tuples for s in stats)
    dead = sum(s.dead_tuples for s in stats)
    total_bytes = sum(s.total_bytes for s in stats)
    never_vacuumed = [s.qualified_name for s in stats if s.last_vacuum is None]
    oldest = max(stats, key=lambda s: s.xid_age, default=None)
    records = [
        {
            "table": s.qualified_name,
            "total_bytes": s.total_bytes,
            "index_bytes": s.index_bytes,
            "live_tuples": s.live_tuples,
            "dead_tuples": s.dead_tuples,
            "dead_ratio": s.dead_ratio,
            "modified_since_analyze": s.modified_since_analyze,
            "last_vacuum": local_time(s.last_vacuum, timezone),
            "last_analyze": local_time(s.last_analyze, timezone),
            "xid_age": s.xid_age,
        }
        for s in stats[:TABLE_ROWS_SHOWN]
    ]
    largest = "\n".join(
        f"| {md_cell(s.qualified_name)} | {format_bytes(s.total_bytes)} | {s.live_tuples:,} | {s.dead_tuples:,} |"
        for s in stats[:10]
    )
    summary = (
        f"**{len(stats)} tables, {format_bytes(total_bytes)}**; {live:,} live and {dead:,} dead tuples; "
        f"{len(never_vacuumed)} never vacuumed.\n\n"
        f"| table | size | live | dead |\n|---|---:|---:|---:|\n{largest}\n"
    )
    return with_sizes(
        {
            "tables": dg.MetadataValue.int(len(stats)),
            "total_bytes": dg.MetadataValue.int(total_bytes),
            "live_tuples": dg.MetadataValue.int(live),
            "dead_tuples": dg.MetadataValue.int(dead),
            "dead_ratio": dg.MetadataValue.float(round(dead / (live + dead), 4) if live + dead else 0.0),
            "never_vacuumed": dg.MetadataValue.int(len(never_vacuumed)),
            "oldest_xid_age": dg.MetadataValue.int(oldest.xid_age if oldest else 0),
            "table_stats": table(records, **_COLUMNS),
            "summary": dg.MetadataValue.md(summary),
        }
    )
