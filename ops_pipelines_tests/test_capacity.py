"""Capacity samples in the metrics schema, CSV history import, the forecast asset and its checks."""

import datetime as dt

import dagster as dg
import numpy as np
import pytest

from ops_pipelines.adapters.postgres import connect
from ops_pipelines.capabilities.capacity.assets import forecast_figures, headroom_verdict
from ops_pipelines.core.capacity.forecast import forecast
from ops_pipelines.core.capacity.samples import CsvError, import_csv, read_history, store_sample, take_sample
from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines_tests.helpers import make_config
from ops_pipelines_tests.test_forecast import GB, history


def capacity_config(tmp_path, erp_db, metrics_db, extra=""):
    config = make_config(tmp_path, {"erp": erp_db}, extra)
    return config.model_copy(update={"metrics": config.metrics.model_copy(update={"dsn": _secret(metrics_db)})})


def _secret(value):
    from pydantic import SecretStr

    return SecretStr(value)


def test_samples_land_in_the_metrics_schema_and_show_growth(erp_db, empty_db, tmp_path):
    db = make_config(tmp_path, {"erp": erp_db}, "capacity: {volume_capacity: 10GB}").databases[0]
    first = take_sample(db)
    store_sample(empty_db, first)
    with connect(erp_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO auth.login_attempts (email, success, ip_address, attempted_at)"
            " SELECT 'bulk@example.com', true, '10.0.0.1', now() FROM generate_series(1, 50000)"
        )
    second = take_sample(db)
    store_sample(empty_db, second)
    assert second.database_bytes > first.database_bytes
    assert first.volume_total_bytes == 10 * 10**9 and first.volume_used_bytes >= first.database_bytes
    assert 0 < first.connections <= first.max_connections
    with connect(empty_db) as conn:
        sizes = conn.execute(
            "SELECT total_bytes FROM ops_metrics.table_sizes WHERE database = 'erp' AND table_name = "
            "'auth.login_attempts'"
            " ORDER BY sampled_at"
        ).fetchall()
        stored = conn.execute(
            "SELECT count(*) AS n FROM ops_metrics.capacity_samples WHERE source = 'sampled'"
        ).fetchone()
    assert len(sizes) == 2 and sizes[1]["total_bytes"] > sizes[0]["total_bytes"]
    assert stored["n"] == 2
    assert len(read_history(empty_db, "erp").used) == 2
    with connect(empty_db) as conn:
        counters = conn.execute(
            "SELECT commits, rollbacks, deadlocks, temp_bytes FROM ops_metrics.capacity_samples ORDER BY sampled_at"
        ).fetchall()
    assert counters[1]["commits"] > counters[0]["commits"] > 0  # the INSERT between the samples committed


def test_a_csv_with_a_bad_row_is_refused_with_its_row_number(empty_db, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("date,bytes\n2026-01-01,100GB\n2026-01-02,101000000000\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("date,bytes\n2026-01-03,102GB\n2026-01-04,lots\n")
    with pytest.raises(CsvError, match=r"bad\.csv row 3: 'lots' is not a number of bytes"):
        import_csv(empty_db, "erp", bad)
    assert import_csv(empty_db, "erp", good) == 2
    result = read_history(empty_db, "erp")
    assert result.imported == 2 and list(result.used) == [100e9, 101e9]
    (tmp_path / "dates.csv").write_text("yesterday,5GB\n")
    with pytest.raises(CsvError, match="row 1: 'yesterday' is not a date"):
        import_csv(empty_db, "erp", tmp_path / "dates.csv")


def test_forecast_asset_with_imported_history(erp_db, empty_db, tmp_path):
    start = dt.date.today() - dt.timedelta(days=120)
    csv = tmp_path / "grafana.csv"
    csv.write_text(
        "date,bytes\n" + "".join(f"{start + dt.timedelta(days=i)},{int(2e9 + i * 20e6)}\n" for i in range(120))
    )
    config = capacity_config(tmp_path, erp_db, empty_db, "capacity: {volume_capacity: 6GB}")
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    result = capability_job(defs, config, "erp", "capacity").execute_in_process(
        partition_key="erp",
        instance=instance,
        run_config={"ops": {"capacity_sample": {"config": {"import_csv": str(csv)}}}},
    )
    assert result.success
    metadata = instance.get_latest_materialization_event(
        dg.AssetKey("capacity_forecast")
    ).asset_materialization.metadata
    assert metadata["enough_history"].value and metadata["imported_samples"].value == 120
    assert metadata["forecast_90d_bytes"].value > 0 and "days_to_warning" in metadata
    assert "data:image/png;base64," in metadata["summary"].value
    chart = tmp_path / "reports" / "capacity_erp.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {"connection_headroom", "capacity_headroom"}
    assert checks["connection_headroom"].passed


def test_too_little_history_is_said_not_guessed(erp_db, empty_db, tmp_path):
    config = capacity_config(tmp_path, erp_db, empty_db)
    instance = dg.DagsterInstance.ephemeral()
    result = capability_job(build_definitions(config), config, "erp", "capacity").execute_in_process(
        partition_key="erp", instance=instance
    )
    assert result.success
    metadata = instance.get_latest_materialization_event(
        dg.AssetKey("capacity_forecast")
    ).asset_materialization.metadata
    assert not metadata["enough_history"].value and "forecast_90d_bytes" not in metadata
    assert "not enough history: 1 days of samples, 14 needed" in metadata["summary"].value
    headroom = {c.check_name: c for c in result.get_asset_check_evaluations()}["capacity_headroom"]
    assert headroom.passed and "no claim" in headroom.description


def test_headroom_thresholds():
    values = 100 * GB + np.arange(60) * 2 * GB  # 218 GB now, +2 GB/day

    def verdict(capacity):
        return headroom_verdict(forecast_figures(forecast(history(values), capacity, 0.7), 0), 90, 30)

    near_full = verdict(260 * GB)  # full in ~21 days
    assert not near_full.passed and not near_full.warning_only and "full in" in near_full.description
    warning = verdict(400 * GB)
    assert not warning.passed and warning.warning_only  # 70% of 400 = 280 GB in ~31 days; full in ~91
    assert verdict(2000 * GB).passed


def test_when_the_models_disagree_the_earlier_crossing_counts_and_both_are_named():
    """Growth that accelerates: the backtest may keep the linear projection, but the verdict takes
    the model that crosses first, says which it is, and shows the other one's days too."""
    days = np.arange(120)
    values = 100 * GB + 0.2 * GB * days + 0.004 * GB * days**2  # accelerating
    result = forecast(history(values), 400 * GB, 0.7)
    figures = forecast_figures(result, 0)
    linear, holt = figures.crossings["robust linear trend"], figures.crossings["damped Holt trend"]
    assert linear != holt
    assert figures.days_to_full == min(d for d in (linear[1], holt[1]) if d is not None)
    earlier = "robust linear trend" if figures.days_to_full == linear[1] else "damped Holt trend"
    assert figures.full_model == earlier
    text = figures.crossing_text("full")
    assert text.startswith(f"in {figures.days_to_full} days ({earlier}; ") and "robust linear trend" in text
    judged = headroom_verdict(figures, warn_days=3650, error_days=3650)
    assert not judged.passed and figures.crossing_text("full") in judged.description


def test_connection_headroom_warns(erp_db, empty_db, tmp_path):
    config = capacity_config(tmp_path, erp_db, empty_db, "capacity: {connection_warn_ratio: 0.001}")
    result = capability_job(build_definitions(config), config, "erp", "capacity").execute_in_process(
        partition_key="erp", instance=dg.DagsterInstance.ephemeral()
    )
    check = {c.check_name: c for c in result.get_asset_check_evaluations()}["connection_headroom"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN


def test_without_a_metrics_database_the_history_lives_in_dagsters_event_log(erp_db, tmp_path):
    """No metrics.dsn: capacity_sample exists anyway, each sample (and the imported rows) is kept as its
    materialization's metadata, and the forecast, its check, the textfile and the report read it there."""
    from ops_pipelines.automation.report import capacity_view
    from ops_pipelines.records.capacity import ForecastFigures, Headroom, SampleFigures

    start = dt.date.today() - dt.timedelta(days=120)
    csv = tmp_path / "grafana.csv"
    csv.write_text(
        "date,bytes\n" + "".join(f"{start + dt.timedelta(days=i)},{int(2e9 + i * 20e6)}\n" for i in range(120))
    )
    config = make_config(
        tmp_path / "store",
        {"erp": erp_db},
        "capacity: {volume_capacity: 6GB}",
        top=f"reports: {{dir: {tmp_path / 'reports'}}}",
    )
    assert config.metrics.dsn is None
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    job = capability_job(defs, config, "erp", "capacity")
    first = job.execute_in_process(
        partition_key="erp",
        instance=instance,
        run_config={"ops": {"capacity_sample": {"config": {"import_csv": str(csv)}}}},
    )
    second = job.execute_in_process(
        partition_key="erp", instance=instance
    )  # a later day's sample adds to the same history
    assert first.success and second.success
    sample = instance.get_latest_materialization_event(dg.AssetKey("capacity_sample")).asset_materialization
    assert sample.metadata["history_kept_in"].value == "Dagster event log"
    assert SampleFigures.from_metadata(sample.metadata).volume_total_bytes == 6_000_000_000
    assert sample.metadata["volume_total_size"].value == "6.0 GB"  # a human size beside every byte count
    forecast_event = instance.get_latest_materialization_event(dg.AssetKey("capacity_forecast"))
    figures = ForecastFigures.from_metadata(forecast_event.asset_materialization.metadata)
    assert figures.enough_history and figures.imported_samples == 120 and figures.samples >= 120
    assert set(figures.horizons) == {30, 90, 180} and figures.horizons[90] > 2e9
    headroom = {c.check_name: c for c in second.get_asset_check_evaluations()}["capacity_headroom"]
    assert Headroom.from_metadata(headroom.metadata) is not None
    view = capacity_view(instance, config, config.databases[0])
    shown = dict(view.figures)
    assert shown["projection"] == figures.method and "in 90 days" in shown and "volume used" in shown
