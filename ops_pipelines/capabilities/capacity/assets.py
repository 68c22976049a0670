"""`capacity_sample` (daily) and `capacity_forecast`, partitioned by database: growth measured, kept, and projected
30/90/180 days ahead with the dates the volume crosses the warning ratio and fills. Checks:
`connection_headroom`, `capacity_headroom`.

Where the history is kept: with `metrics.dsn`, in the metrics database (`ops_metrics.capacity_samples`,
which Grafana can read); without it, in Dagster's own event log — each sample's materialization
metadata is a point of the history (records/capacity.py), so capacity works with no extra database.
"""

import base64
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from ops_pipelines.capabilities.common import check_result, fleet_asset, fleet_check, retry_if_transient
from ops_pipelines.capability import Capability, Fleets
from ops_pipelines.config import DatabaseConfig, OpsConfig
from ops_pipelines.core.verdict import Verdict
from ops_pipelines.history import latest_materialization, materialization_metadata
from ops_pipelines.records.capacity import ForecastFigures, Headroom, SampleFigures, history_points
from ops_pipelines.records.metadata import table
from ops_pipelines.units import format_bytes

if TYPE_CHECKING:
    from ops_pipelines.core.capacity.forecast import Forecast
    from ops_pipelines.core.capacity.samples import History

# pandas and matplotlib (core.capacity.samples, core.capacity.forecast) are imported inside the assets: loading
# the code location, which every webserver and daemon start does, should not pay for them.

EVENT_LOG_SAMPLES = 5000  # samples read back from the event log: over ten years of daily samples
PAGE = 1000


class SampleConfig(dg.Config):
    import_csv: str = ""  # a CSV of date,bytes to import first, labelled "imported" (start with Grafana's numbers)


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    ops_config = config  # the sample asset's own `config` parameter is the launchpad's SampleConfig
    metrics_dsn = config.metrics.dsn.get_secret_value() if config.metrics.dsn else None
    fleet = fleets["capacity_sample"]
    sample_key = dg.AssetKey("capacity_sample")
    charts = config.reports_dir

    @fleet_asset(
        capability,
        "capacity_sample",
        fleet,
        deps=("table_stats",),
        description="Size, largest tables, WAL, connections and cache hit ratio of the database, and the volume; "
        "kept in ops_metrics.capacity_samples in the metrics database, or else in this asset's history.",
    )
    def capacity_sample(context: dg.AssetExecutionContext, config: SampleConfig) -> dg.MaterializeResult:
        db = fleet.database(context.partition_key)
        from ops_pipelines.core.capacity.samples import parse_history_csv, store_imported, store_sample, take_sample

        rows = parse_history_csv(Path(config.import_csv)) if config.import_csv else []
        with retry_if_transient():
            sample = take_sample(db)
        if metrics_dsn:
            if rows:
                store_imported(metrics_dsn, db.name, rows)
            store_sample(metrics_dsn, sample)
        if rows:
            context.log.info(f"{db.name}: imported {len(rows)} history rows from {config.import_csv}")
        figures = SampleFigures(
            database_bytes=sample.database_bytes,
            connections=sample.connections,
            max_connections=sample.max_connections,
            wal_bytes=sample.wal_bytes,
            volume_used_bytes=sample.volume_used_bytes,
            volume_total_bytes=sample.volume_total_bytes,
            cache_hit_ratio=sample.cache_hit_ratio,
            # without a metrics database the imported rows are kept here, in the event log
            imported=[] if metrics_dsn else [(moment.isoformat(), size) for moment, size in rows],
        )
        metadata = {
            **figures.to_metadata(),
            "imported_rows": dg.MetadataValue.int(len(rows)),
            "history_kept_in": dg.MetadataValue.text("metrics database" if metrics_dsn else "Dagster event log"),
            "largest_tables": table(
                sample.tables,
                table_name="string",
                **dict.fromkeys(("total_bytes", "table_bytes", "index_bytes", "toast_bytes"), "int"),
            ),
        }
        return dg.MaterializeResult(metadata=metadata)

    def load_history(instance: dg.DagsterInstance, db: DatabaseConfig) -> "History":
        from ops_pipelines.core.capacity.samples import history_from_points, read_history

        if metrics_dsn:
            return read_history(metrics_dsn, db.name)
        records, cursor = [], None
        of_database = dg.AssetRecordsFilter(asset_key=sample_key, asset_partitions=[db.name])
        while len(records) < EVENT_LOG_SAMPLES:
            page = instance.fetch_materializations(of_database, limit=PAGE, cursor=cursor)
            records += page.records
            if not page.has_more:
                break
            cursor = page.cursor
        return history_from_points(history_points(records))

    @fleet_check(
        "capacity_sample",
        "connection_headroom",
        fleet,
        description="Connections in use stay under capacity.connection_warn_ratio of max_connections (warning).",
    )
    def connection_headroom(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        db = fleet.database(context.partition_key)
        settings = db.capacity
        figures = SampleFigures.from_metadata(
            materialization_metadata(latest_materialization(context.instance, sample_key, db.name))
        )
        if figures is None:
            return check_result(Verdict.warn("no capacity sample yet"))
        ratio = round(figures.connection_ratio, 4)
        verdict = Verdict(
            ratio <= settings.connection_warn_ratio,
            True,
            f"{ratio:.0%} of max_connections in use (warning over {settings.connection_warn_ratio:.0%})",
            {"connection_ratio": ratio},
        )
        return check_result(verdict)

    @fleet_asset(
        capability,
        "capacity_forecast",
        fleets["capacity_forecast"],
        deps=("capacity_sample",),
        kinds=("pandas",),
        description="Growth of the database projected 30/90/180 days ahead by two models (robust linear and "
        "damped Holt; the backtest chooses the projection), and the days until the volume crosses "
        "capacity.warn_ratio and 100% by the EARLIER of the two: the days capacity_headroom, the report and the "
        "gauge state. Sizes in decimal units (1 GB = 10^9 bytes).",
    )
    def capacity_forecast(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from ops_pipelines.core.capacity.forecast import forecast
        from ops_pipelines.core.capacity.samples import draw_chart

        db = fleet.database(context.partition_key)
        settings = db.capacity
        history = load_history(context.instance, db)
        result = forecast(history.used, history.capacity_bytes, settings.warn_ratio)
        chart = draw_chart(
            history,
            result,
            settings.warn_ratio,
            f"{db.name}: capacity",
            charts / f"capacity_{db.name}.png",
            mode=ops_config.reports.file_mode,
        )
        context.log.info(f"{db.name}: {result.reason}")
        return dg.MaterializeResult(metadata=forecast_metadata(result, history.imported, chart, history.capacity_bytes))

    @fleet_check(
        "capacity_forecast",
        "capacity_headroom",
        fleets["capacity_forecast"],
        description="Warns when capacity.warn_ratio of the volume is forecast within capacity.warn_within, errors "
        "when 100% is forecast within capacity.error_within. Judges the newest capacity_forecast's figures: the "
        "earlier of its two models' crossings, the same days the report and the Prometheus gauge state.",
    )
    def capacity_headroom(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        db = fleet.database(context.partition_key)
        settings = db.capacity
        event = latest_materialization(context.instance, dg.AssetKey("capacity_forecast"), db.name)
        if event is None:
            return check_result(Verdict.ok("no capacity_forecast yet: no claim", warning_only=True))
        figures = ForecastFigures.from_metadata(materialization_metadata(event))
        return check_result(
            headroom_verdict(
                figures, settings.warn_within.to_timedelta().days, settings.error_within.to_timedelta().days
            )
        )

    return dg.Definitions(
        assets=[capacity_sample, capacity_forecast], asset_checks=[connection_headroom, capacity_headroom]
    )


def headroom_verdict(figures: ForecastFigures, warn_days: int, error_days: int) -> Verdict:
    if not figures.enough_history:
        return Verdict.ok(f"{figures.method}: no claim yet", warning_only=True)
    full, warn = figures.days_to_full, figures.days_to_warning
    metadata = Headroom(days_to_warning=warn, days_to_full=full).to_metadata()
    if full is not None and full <= error_days:
        return Verdict.fail(
            f"the volume is forecast full {figures.crossing_text('full')} (limit {error_days})", metadata
        )
    if warn is not None and warn <= warn_days:
        return Verdict.warn(
            f"the warning ratio is forecast {figures.crossing_text('warning')} (limit {warn_days})",
            metadata,
        )
    return Verdict.ok(
        "no crossing within the limits" + (f": warning ratio {figures.crossing_text('warning')}" if warn else ""),
        metadata,
    )


def forecast_figures(result: "Forecast", imported: int) -> ForecastFigures:
    if not result.enough_history:
        return ForecastFigures(False, result.reason, result.samples, imported)
    return ForecastFigures(
        enough_history=True,
        method=result.reason,
        samples=result.samples,
        imported_samples=imported,
        horizons={h: int(point) for h, (point, _, _) in result.horizons.items()},
        model=result.model,
        days_to_warning=result.days_to_warn,
        days_to_full=result.days_to_full,
        warning_model=result.warn_model,
        full_model=result.full_model,
        crossings={name: (c.days_to_warn, c.days_to_full) for name, c in result.crossings.items()},
    )


def forecast_metadata(result: "Forecast", imported: int, chart: Path, capacity_bytes: int | None) -> dict:
    figures = forecast_figures(result, imported)
    metadata = {**figures.to_metadata(), "chart": dg.MetadataValue.path(str(chart))}
    image = base64.b64encode(chart.read_bytes()).decode()
    if not result.enough_history:
        metadata["summary"] = dg.MetadataValue.md(
            f"**{result.reason}.** No forecast yet.\n\n![chart](data:image/png;base64,{image})"
        )
        return metadata
    if result.mape is not None:
        metadata["backtest_mape_percent"] = dg.MetadataValue.float(round(result.mape, 2))
    horizons = [
        f"| in {h} days | {format_bytes(p)} | {format_bytes(lo)} – {format_bytes(hi)} |"
        for h, (p, lo, hi) in result.horizons.items()
    ]
    models = [
        f"| {name}{' (chosen)' if name == result.model else ''} | {result.backtest.get(name, 0):.1f}% | "
        f"{_days(crossing.days_to_warn)} | {_days(crossing.days_to_full)} |"
        for name, crossing in result.crossings.items()
    ]
    label = f" ({imported} imported samples)" if imported else ""
    capacity = f" of {format_bytes(capacity_bytes)}" if capacity_bytes else " (no volume capacity known)"
    metadata["summary"] = dg.MetadataValue.md(
        f"**Warning ratio {figures.crossing_text('warning')}; volume{capacity} full "
        f"{figures.crossing_text('full')}.** The earlier model counts: capacity_headroom, the report and the "
        "gauge state these days.\n\n"
        "| model | backtest error (MAPE) | warning ratio in | full in |\n|---|---:|---:|---:|\n"
        + "\n".join(models)
        + f"\n\nProjection of the chosen model ({result.model}), {result.samples} days of history{label}:\n\n"
        "| horizon | forecast | 95% interval |\n|---|---:|---:|\n"
        + "\n".join(horizons)
        + f"\n\n![chart](data:image/png;base64,{image})"
    )
    return metadata


def _days(days: int | None) -> str:
    return f"{days} days" if days is not None else "no crossing"
