"""Capacity forecasting maths, without I/O (the capacity assets are not built yet: issue 7)."""

import numpy as np
import pandas as pd

from ops_pipelines.core.capacity.forecast import MIN_SAMPLES, daily_series, forecast

GB = 1e9


def history(values, start="2026-01-01") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="D", tz="UTC"))


def test_too_little_history_makes_no_claim():
    result = forecast(history(np.linspace(100, 110, MIN_SAMPLES - 1) * GB), 500 * GB, 0.7)
    assert not result.enough_history and result.days_to_warn is None and result.horizons == {}
    assert result.reason == f"not enough history: {MIN_SAMPLES - 1} days of samples, {MIN_SAMPLES} needed"


def test_linear_growth_crossing_dates_and_intervals():
    rng = np.random.default_rng(3)
    values = 100 * GB + np.arange(120) * 2 * GB + rng.normal(0, 0.5 * GB, 120)
    result = forecast(history(values), 500 * GB, 0.7)
    assert result.model == "robust linear trend" and result.mape < 2
    # last value ~338 GB; 70% of 500 GB = 350 GB at ~2 GB/day: ~6 days; full at ~81 days
    assert abs(result.days_to_warn - 6) <= 1 and abs(result.days_to_full - 81) <= 3
    point, low, high = result.horizons[90]
    assert low < point < high and abs(point - (100 + 209 * 2) * GB) < 5 * GB
    assert result.horizons[180][2] - result.horizons[180][1] > result.horizons[30][2] - result.horizons[30][1]
    assert result.crossing_date(result.days_to_full) == result.last_date + pd.Timedelta(days=result.days_to_full)
    assert len(result.path) >= 180


def test_without_a_capacity_there_is_a_forecast_but_no_crossing():
    result = forecast(history(100 * GB + np.arange(30) * GB), None, 0.7)
    assert result.enough_history and result.days_to_warn is None and result.days_to_full is None


def test_already_over_the_warning_line_is_day_zero():
    result = forecast(history(400 * GB + np.arange(30) * 0.1 * GB), 500 * GB, 0.7)
    assert result.days_to_warn == 0


def test_irregular_samples_become_one_value_per_day():
    index = pd.to_datetime(["2026-01-01 01:00", "2026-01-01 13:00", "2026-01-03 02:00"], utc=True)
    series = daily_series(pd.Series([10.0, 20.0, 35.0], index=index))
    assert list(series.round(1)) == [15.0, 25.0, 35.0]  # the gap day is interpolated


def test_crossing_dates_within_ten_percent_on_linear_and_weekly_histories():
    """The accuracy target of issue 7 (bench/bench_forecast.py measures more seeds and cases)."""
    t = np.arange(120)
    cases = {
        "linear": lambda d: 150 * GB + 1.0 * GB * d,
        "weekly": lambda d: 150 * GB + 1.0 * GB * d + 4 * GB * np.sin(2 * np.pi * d / 7),
    }
    for name, curve in cases.items():
        future = np.arange(120, 2000)
        truth = int(np.nonzero(curve(future) >= 0.7 * 500 * GB)[0][0]) + 1
        for seed in range(5):
            noisy = curve(t) + np.random.default_rng(seed).normal(0, GB, 120)
            predicted = forecast(history(noisy), 500 * GB, 0.7).days_to_warn
            assert abs(predicted - truth) <= 0.1 * truth, (name, seed, predicted, truth)
