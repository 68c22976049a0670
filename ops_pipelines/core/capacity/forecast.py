"""Capacity forecasting: fit two models to a daily size history, keep the one that forecasts the
recent past best, and say when the volume crosses the warning ratio and when it is full.

- robust linear trend: the Theil-Sen slope (median of pairwise slopes; a bulk import or an
  outlier day barely moves it), with the usual regression prediction interval;
- Holt's damped additive trend: level and trend smoothed, the trend damped towards flat
  (parameters by grid search on one-step errors, all combinations at once with numpy).

The last `BACKTEST_SHARE` of the history (at least a week) is held out: each model is fitted on
the rest and forecasts it; the lower MAPE wins and is refitted on everything. Under
`MIN_SAMPLES` days of history there is no forecast, only the reason why.

Two figures answer two questions, and each says which model gave it:
- the projection (30/90/180 days, with its interval) is the backtest's winner: the best guess;
- the crossings (`days_to_warn`, `days_to_full`) are the EARLIER of the two models': what the
  headroom check, the report and the Prometheus gauge all state, so a database whose growth
  accelerates is not called safe because the chosen model damps its trend. Both models' crossings
  are kept (`crossings`) and both are drawn on the chart.
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd

MIN_SAMPLES = 14
BACKTEST_SHARE = 0.2
PARSIMONY = 0.8  # the adaptive model must cut the linear model's backtest error by 20% to be chosen
HORIZONS = (30, 90, 180)
MAX_DAYS = 3650  # crossings later than ten years are reported as none
Z95 = 1.96


@dataclass(frozen=True)
class Fit:
    name: str
    points: np.ndarray  # forecast for days 1..MAX_DAYS after the last sample
    sigma: np.ndarray  # standard error for each of those days


@dataclass(frozen=True)
class Crossing:
    """When one model's forecast reaches the warning ratio and the capacity (None: not within ten years)."""

    days_to_warn: int | None
    days_to_full: int | None


@dataclass(frozen=True)
class Forecast:
    enough_history: bool
    reason: str
    samples: int
    last_date: dt.date | None = None
    last_bytes: float | None = None
    model: str | None = None
    mape: float | None = None  # of the chosen model on the held-out days, in percent
    backtest: dict[str, float] = field(default_factory=dict)  # MAPE of every model
    horizons: dict[int, tuple[float, float, float]] = field(default_factory=dict)  # days -> (point, low, high)
    crossings: dict[str, Crossing] = field(default_factory=dict)  # model name -> its crossings
    path: pd.DataFrame | None = None  # date, forecast, low, high (chosen model), and each model's points

    @property
    def days_to_warn(self) -> int | None:
        """The earlier model's day the warning ratio is reached: what every verdict states."""
        return _earliest(c.days_to_warn for c in self.crossings.values())

    @property
    def days_to_full(self) -> int | None:
        return _earliest(c.days_to_full for c in self.crossings.values())

    @property
    def warn_model(self) -> str | None:
        """The model `days_to_warn` comes from (the chosen one when both agree)."""
        return self._model_of(lambda c: c.days_to_warn)

    @property
    def full_model(self) -> str | None:
        return self._model_of(lambda c: c.days_to_full)

    def _model_of(self, days) -> str | None:
        known = [(days(c), name != self.model, name) for name, c in self.crossings.items() if days(c) is not None]
        return min(known)[2] if known else None

    def crossing_date(self, days: int | None) -> dt.date | None:
        return None if days is None or self.last_date is None else self.last_date + dt.timedelta(days=days)


def daily_series(samples: pd.Series) -> pd.Series:
    """Samples (any times, any count per day) as one value per calendar day, gaps interpolated."""
    series = samples.dropna().astype(float)
    series.index = pd.to_datetime(series.index, utc=True).tz_convert(None).normalize()
    daily = cast(pd.Series, series.groupby(level=0).mean())  # pandas' stubs cannot tell it stays a Series
    return daily.asfreq("D").interpolate(method="time")


def forecast(samples: pd.Series, capacity_bytes: float | None, warn_ratio: float) -> Forecast:
    series = daily_series(samples) if len(samples) else pd.Series(dtype=float)
    if len(series) < MIN_SAMPLES:
        return Forecast(False, f"not enough history: {len(series)} days of samples, {MIN_SAMPLES} needed", len(series))
    y = series.to_numpy()
    holdout = max(7, round(len(y) * BACKTEST_SHARE))
    train, test = y[:-holdout], y[-holdout:]
    backtest = {}
    for fitter in (fit_theil_sen, fit_damped_holt):
        fitted = fitter(train)
        backtest[fitted.name] = float(np.mean(np.abs(test - fitted.points[:holdout]) / np.abs(test)) * 100)
    # The simpler model wins unless the other forecasts the held-out days clearly better: on a
    # short holdout, noise alone can make the adaptive model look a little better.
    holt_wins = backtest["damped Holt trend"] < PARSIMONY * backtest["robust linear trend"]
    chosen_name = "damped Holt trend" if holt_wins else "robust linear trend"
    chosen, other = (fit_damped_holt(y), fit_theil_sen(y)) if holt_wins else (fit_theil_sen(y), fit_damped_holt(y))

    horizons = {
        h: (
            chosen.points[h - 1],
            chosen.points[h - 1] - Z95 * chosen.sigma[h - 1],
            chosen.points[h - 1] + Z95 * chosen.sigma[h - 1],
        )
        for h in HORIZONS
    }
    crossings = {
        fit.name: Crossing(
            _first_day_at_or_over(y[-1], fit.points, warn_ratio * capacity_bytes) if capacity_bytes else None,
            _first_day_at_or_over(y[-1], fit.points, capacity_bytes) if capacity_bytes else None,
        )
        for fit in (chosen, other)
    }
    latest_full = max((c.days_to_full or 0 for c in crossings.values()), default=0)
    shown = max(HORIZONS[-1], min(MAX_DAYS, latest_full + 30))
    last_day = cast(pd.Timestamp, series.index[-1])  # a DatetimeIndex (daily_series): never NaT
    dates = pd.date_range(last_day + pd.Timedelta(days=1), periods=shown, freq="D")
    path = pd.DataFrame(
        {
            "date": dates,
            "forecast": chosen.points[:shown],
            "low": chosen.points[:shown] - Z95 * chosen.sigma[:shown],
            "high": chosen.points[:shown] + Z95 * chosen.sigma[:shown],
            **{fit.name: fit.points[:shown] for fit in (chosen, other)},
        }
    )
    return Forecast(
        True,
        f"{chosen.name} chosen by backtest on the last {holdout} days",
        len(y),
        last_day.date(),
        float(y[-1]),
        chosen.name,
        backtest[chosen_name],
        backtest,
        horizons,
        crossings,
        path,
    )


def _earliest(days) -> int | None:
    known = [d for d in days if d is not None]
    return min(known) if known else None


def _first_day_at_or_over(last: float, points: np.ndarray, threshold: float) -> int | None:
    if last >= threshold:
        return 0
    over = np.nonzero(points >= threshold)[0]
    return int(over[0]) + 1 if len(over) else None


def fit_theil_sen(y: np.ndarray) -> Fit:
    x = np.arange(len(y), dtype=float)
    i, j = np.triu_indices(len(y), k=1)
    if len(i) > 200_000:  # long histories: a fixed random subset of pairs is as good
        pick = np.random.default_rng(0).choice(len(i), 200_000, replace=False)
        i, j = i[pick], j[pick]
    slope = float(np.median((y[j] - y[i]) / (x[j] - x[i])))
    intercept = float(np.median(y - slope * x))
    residuals = y - (intercept + slope * x)
    s = float(np.sqrt(np.sum(residuals**2) / max(len(y) - 2, 1)))
    future = x[-1] + np.arange(1, MAX_DAYS + 1)
    spread = np.sum((x - x.mean()) ** 2)
    sigma = s * np.sqrt(1 + 1 / len(y) + (future - x.mean()) ** 2 / spread)
    return Fit("robust linear trend", intercept + slope * future, sigma)


_ALPHAS = np.array([0.1, 0.2, 0.3, 0.5, 0.7, 0.9])
_BETAS = np.array([0.01, 0.05, 0.1, 0.2, 0.3])
_PHIS = np.array([0.95, 0.98, 1.0])  # 1.0: undamped; stronger damping flattens real growth


def fit_damped_holt(y: np.ndarray) -> Fit:
    alpha, beta, phi = (a.ravel() for a in np.meshgrid(_ALPHAS, _BETAS, _PHIS, indexing="ij"))
    level = np.full(alpha.shape, y[0])
    trend = np.full(alpha.shape, y[1] - y[0])
    sse = np.zeros(alpha.shape)
    for value in y[1:]:  # all parameter combinations advance together
        predicted = level + phi * trend
        sse += (value - predicted) ** 2
        new_level = alpha * value + (1 - alpha) * predicted
        trend = beta * (new_level - level) + (1 - beta) * phi * trend
        level = new_level
    best = int(np.argmin(sse))
    damping = np.cumsum(phi[best] ** np.arange(1, MAX_DAYS + 1))
    points = level[best] + trend[best] * damping
    sigma1 = float(np.sqrt(sse[best] / max(len(y) - 1, 1)))
    # The variance of an h-step forecast grows with h (exact for a random walk with drift).
    sigma = sigma1 * np.sqrt(np.arange(1, MAX_DAYS + 1))
    return Fit("damped Holt trend", points, sigma)
