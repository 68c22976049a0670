"""Forecast accuracy on synthetic histories with known truth, and forecasting speed.

Targets (issue 7): from 120 days of history, the predicted date the volume crosses the warning
ratio (70%) lands within 10% of the true remaining days for linear growth and weekly seasonality;
the error for accelerating growth and a step (bulk import) is stated. Forecasting 50 databases x
2 years of daily samples takes under 5 seconds.

    .venv/bin/python bench/bench_forecast.py [--seeds 20]
"""

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from ops_pipelines.core.capacity.forecast import forecast

GB = 1e9
CAPACITY = 500 * GB
WARN = 0.7
HISTORY_DAYS = 120
CASES = {
    # true used bytes on day t (t = 0 .. history and beyond), noise-free
    "linear": lambda t: 150 * GB + 1.0 * GB * t,
    "weekly seasonality": lambda t: 150 * GB + 1.0 * GB * t + 4 * GB * np.sin(2 * np.pi * t / 7),
    "accelerating": lambda t: 150 * GB + 0.3 * GB * t + 0.006 * GB * t**2,
    "step (bulk import)": lambda t: 150 * GB + 0.8 * GB * t + 40 * GB * (t >= 90),
}


def true_remaining_days(curve) -> int:
    t = np.arange(HISTORY_DAYS, HISTORY_DAYS + 5000)
    return int(np.nonzero(curve(t) >= WARN * CAPACITY)[0][0]) + 1  # days after the last sample


def run_case(curve, seed: int) -> float:
    rng = np.random.default_rng(seed)
    t = np.arange(HISTORY_DAYS)
    used = curve(t) + rng.normal(0, 1.0 * GB, HISTORY_DAYS)
    samples = pd.Series(used, index=pd.date_range("2026-01-01", periods=HISTORY_DAYS, freq="D", tz="UTC"))
    result = forecast(samples, CAPACITY, WARN)
    truth = true_remaining_days(curve)
    if result.days_to_warn is None:  # no crossing forecast within ten years
        return float("inf")
    return abs(result.days_to_warn - truth) / truth * 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    print(f"| history ({HISTORY_DAYS} days, noise sd 1 GB) | true days to 70% | median error | worst error |")
    print("|---|---:|---:|---:|")
    for name, curve in CASES.items():
        errors = [run_case(curve, seed) for seed in range(args.seeds)]
        print(f"| {name} | {true_remaining_days(curve)} | {statistics.median(errors):.1f} % | {max(errors):.1f} % |")

    rng = np.random.default_rng(1)
    histories = [
        pd.Series(
            100 * GB + np.cumsum(rng.normal(0.5 * GB, 0.3 * GB, 730)),
            index=pd.date_range("2025-01-01", periods=730, freq="D", tz="UTC"),
        )
        for _ in range(50)
    ]
    started = time.perf_counter()
    for history in histories:
        forecast(history, CAPACITY, WARN)
    seconds = time.perf_counter() - started
    print(f"\n50 databases x 730 daily samples: {seconds:.2f} s (target < 5 s)")


if __name__ == "__main__":
    main()
