"""`<db>/capacity_sample` (daily) and `<db>/capacity_forecast`: growth measured, kept in the
metrics schema, and projected 30/90/180 days ahead with the dates the volume crosses the warning
ratio and fills. Checks: `connection_headroom`, `capacity_headroom`. Built when `metrics.dsn` is set.
"""

import base64
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from ops_pipelines.assets.common import asset_key, check_result, database_asset, retry_if_transient
from ops_pipelines.capability import Capability
from ops_pipelines.config import DatabaseConfig, OpsConfig
from ops_pipelines.core.verdict import Verdict
from ops_pipelines.units import format_bytes

if TYPE_CHECKING:
    from ops_pipelines.core.forecast import Forecast

# pandas and matplotlib (core.capacity, core.forecast) are imported inside the assets: loading
# the code location, which every webserver and daemon start does, should not pay for them.


class SampleConfig(dg.Config):
    import_csv: str = ""  # a CSV of date,bytes to import first, labelled "imported" (start with Grafana's numbers)


def build(config: OpsConfig, db: DatabaseConfig, capability: Capability) -> dg.Definitions:
    ops_config = config  # the sample asset's own `config` parameter is the launchpad's SampleConfig
    metrics_dsn = config.metrics.dsn.get_secret_value()  # the registry builds capacity only when it is set
    settings = db.capacity
    sample_key, forecast_key = asset_key(db, "capacity_sample"), asset_key(db, "capacity_forecast")
    charts = config.reports_dir

    @database_asset(capability, db, "capacity_sample", deps=("table_stats",),
                    description=f"Size, largest tables, WAL, connections and cache hit ratio of {db.name}, and the volume; "
                                "appended to ops_metrics.capacity_samples in the metrics database.")
    def capacity_sample(context: dg.AssetExecutionContext, config: SampleConfig) -> dg.MaterializeResult:
        from ops_pipelines.core.capacity import import_csv, store_sample, take_sample

        imported = import_csv(metrics_dsn, db.name, Path(config.import_csv)) if config.import_csv else 0
        if imported:
            context.log.info(f"{db.name}: imported {imported} history rows from {config.import_csv}")
        with retry_if_transient():
            sample = take_sample(db)
        store_sample(metrics_dsn, sample)
        metadata = {
            "database_bytes": dg.MetadataValue.int(sample.database_bytes),
            "connections": dg.MetadataValue.int(sample.connections),
            "max_connections": dg.MetadataValue.int(sample.max_connections),
            "connection_ratio": dg.MetadataValue.float(round(sample.connection_ratio, 4)),
            "imported_rows": dg.MetadataValue.int(imported),
            "largest_tables": dg.MetadataValue.table(
                [dg.TableRecord({k: t[k] for k in ("table_name", "total_bytes", "table_bytes", "index_bytes", "toast_bytes")})
                 for t in sample.tables],
                schema=dg.TableSchema(columns=[dg.TableColumn("table_name", "string")] + [
                    dg.TableColumn(c, "int") for c in ("total_bytes", "table_bytes", "index_bytes", "toast_bytes")]),
            ),
        }
        for name in ("wal_bytes", "volume_used_bytes", "volume_total_bytes"):
            if getattr(sample, name) is not None:
                metadata[name] = dg.MetadataValue.int(getattr(sample, name))
        if sample.cache_hit_ratio is not None:
            metadata["cache_hit_ratio"] = dg.MetadataValue.float(round(sample.cache_hit_ratio, 4))
        if sample.volume_used_bytes and sample.volume_total_bytes:
            metadata["volume_used_ratio"] = dg.MetadataValue.float(round(sample.volume_used_bytes / sample.volume_total_bytes, 4))
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset_check(asset=sample_key, name="connection_headroom",
                    description=f"Connections in use stay under {settings.connection_warn_ratio:.0%} of max_connections (warning).")
    def connection_headroom(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        event = context.instance.get_latest_materialization_event(sample_key)
        if event is None:
            return check_result(Verdict(False, True, "no capacity sample yet"))
        ratio = event.asset_materialization.metadata["connection_ratio"].value
        verdict = Verdict(ratio <= settings.connection_warn_ratio, True,
                          f"{ratio:.0%} of max_connections in use (warning over {settings.connection_warn_ratio:.0%})",
                          {"connection_ratio": ratio})
        return check_result(verdict)

    @database_asset(capability, db, "capacity_forecast", deps=("capacity_sample",), kinds=("pandas",),
                    description=f"Growth of {db.name} projected 30/90/180 days ahead (robust linear or damped Holt, "
                                f"chosen by backtest), with the dates the volume crosses {settings.warn_ratio:.0%} and 100%.")
    def capacity_forecast(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from ops_pipelines.core.capacity import draw_chart, read_history
        from ops_pipelines.core.forecast import forecast

        history = read_history(metrics_dsn, db.name)
        result = forecast(history.used, history.capacity_bytes, settings.warn_ratio)
        chart = draw_chart(history, result, settings.warn_ratio, f"{db.name}: capacity", charts / f"capacity_{db.name}.png",
                           mode=ops_config.reports.file_mode)
        context.log.info(f"{db.name}: {result.reason}")
        return dg.MaterializeResult(metadata=forecast_metadata(result, history.imported, chart, ops_config.timezone))

    @dg.asset_check(asset=forecast_key, name="capacity_headroom", description=(
        f"Warns when {settings.warn_ratio:.0%} of the volume is forecast within {settings.warn_within}, errors when "
        f"100% is forecast within {settings.error_within} (the earlier of the two models counts)."))
    def capacity_headroom() -> dg.AssetCheckResult:
        from ops_pipelines.core.capacity import read_history
        from ops_pipelines.core.forecast import forecast

        history = read_history(metrics_dsn, db.name)
        result = forecast(history.used, history.capacity_bytes, settings.warn_ratio)
        return check_result(headroom_verdict(result, settings.warn_within.to_timedelta().days,
                                             settings.error_within.to_timedelta().days))

    return dg.Definitions(assets=[capacity_sample, capacity_forecast], asset_checks=[connection_headroom, capacity_headroom])


def headroom_verdict(result: "Forecast", warn_days: int, error_days: int) -> Verdict:
    if not result.enough_history:
        return Verdict(True, True, f"{result.reason}: no claim yet")
    full, warn = result.earliest_days_to_full, result.earliest_days_to_warn
    metadata = {"days_to_warning": warn if warn is not None else -1, "days_to_full": full if full is not None else -1}
    if full is not None and full <= error_days:
        return Verdict(False, False, f"the volume is forecast full in {full} days (limit {error_days})", metadata)
    if warn is not None and warn <= warn_days:
        return Verdict(False, True, f"the warning ratio is forecast in {warn} days (limit {warn_days})", metadata)
    return Verdict(True, False, "no crossing within the limits" + (f": warning in {warn} days" if warn is not None else ""), metadata)


def forecast_metadata(result: "Forecast", imported: int, chart: Path, timezone: str) -> dict:
    metadata = {"enough_history": dg.MetadataValue.bool(result.enough_history), "samples": dg.MetadataValue.int(result.samples),
                "imported_samples": dg.MetadataValue.int(imported), "chart": dg.MetadataValue.path(str(chart)),
                "method": dg.MetadataValue.text(result.reason)}
    image = base64.b64encode(chart.read_bytes()).decode()
    if not result.enough_history:
        metadata["summary"] = dg.MetadataValue.md(f"**{result.reason}.** No forecast yet.\n\n![chart](data:image/png;base64,{image})")
        return metadata
    lines = [f"| in {h} days | {format_bytes(p)} | {format_bytes(lo)} – {format_bytes(hi)} |" for h, (p, lo, hi) in result.horizons.items()]
    for h, (point, low, high) in result.horizons.items():
        metadata[f"forecast_{h}d_bytes"] = dg.MetadataValue.int(int(point))
    metadata["backtest_mape_percent"] = dg.MetadataValue.float(round(result.mape, 2))
    crossing = []
    for label, days in (("warning ratio", result.days_to_warn), ("full", result.days_to_full)):
        if days is not None:
            metadata[f"days_to_{label.split()[0]}"] = dg.MetadataValue.int(days)
            crossing.append(f"{label}: {result.crossing_date(days)} (in {days} days)")
    label = f" ({imported} imported samples)" if imported else ""
    metadata["summary"] = dg.MetadataValue.md(
        f"**{result.model}**, backtest MAPE {result.mape:.1f}% on {result.samples} days{label}.\n\n"
        "| horizon | forecast | 95% interval |\n|---|---:|---:|\n" + "\n".join(lines) + "\n\n"
        + ("; ".join(crossing) or "no crossing within ten years") + f"\n\n![chart](data:image/png;base64,{image})"
    )
    return metadata
