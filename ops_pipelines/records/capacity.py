"""What the capacity assets record, as typed records: the one writer and the one reader of each
materialization's (or check's) metadata. The report, the Prometheus textfile, the checks and the
event-log history read these, never the metadata keys by name, so a renamed key cannot silently
break a reader.
"""

import datetime as dt
import math
from dataclasses import dataclass, field

import dagster as dg

from ops_pipelines.history import materialization_metadata
from ops_pipelines.records.metadata import value, with_sizes

HORIZONS = (30, 90, 180)  # days ahead the forecast states


@dataclass(frozen=True)
class SampleFigures:
    """One `capacity_sample` materialization. Also the capacity history when there is no metrics database:
    `used_bytes` at the materialization's time, and any `imported` (date, bytes) rows it brought."""

    database_bytes: int
    connections: int
    max_connections: int
    wal_bytes: int | None = None
    volume_used_bytes: int | None = None
    volume_total_bytes: int | None = None
    cache_hit_ratio: float | None = None
    imported: list[tuple[str, int]] = field(default_factory=list)  # (ISO date, bytes) from a CSV import

    @property
    def connection_ratio(self) -> float:
        return self.connections / self.max_connections if self.max_connections else 0.0

    @property
    def used_bytes(self) -> int:
        """What the forecast projects: the volume's use, or else the database's size."""
        return self.volume_used_bytes if self.volume_used_bytes is not None else self.database_bytes

    @property
    def volume_used_ratio(self) -> float | None:
        if self.volume_used_bytes is None or not self.volume_total_bytes:
            return None
        return self.volume_used_bytes / self.volume_total_bytes

    def to_metadata(self) -> dict:
        metadata = {
            "database_bytes": dg.MetadataValue.int(self.database_bytes),
            "connections": dg.MetadataValue.int(self.connections),
            "max_connections": dg.MetadataValue.int(self.max_connections),
            "connection_ratio": dg.MetadataValue.float(round(self.connection_ratio, 4)),
        }
        for name in ("wal_bytes", "volume_used_bytes", "volume_total_bytes"):
            if getattr(self, name) is not None:
                metadata[name] = dg.MetadataValue.int(getattr(self, name))
        if self.cache_hit_ratio is not None:
            metadata["cache_hit_ratio"] = dg.MetadataValue.float(round(self.cache_hit_ratio, 4))
        if self.volume_used_ratio is not None:
            metadata["volume_used_ratio"] = dg.MetadataValue.float(round(self.volume_used_ratio, 4))
        if self.imported:
            metadata["imported_history"] = dg.MetadataValue.json([[day, size] for day, size in self.imported])
        return with_sizes(metadata)

    @classmethod
    def from_metadata(cls, metadata) -> "SampleFigures | None":
        database_bytes = value(metadata, "database_bytes")
        if database_bytes is None:
            return None
        return cls(
            database_bytes=int(database_bytes),
            connections=int(value(metadata, "connections", 0)),
            max_connections=int(value(metadata, "max_connections", 0)),
            wal_bytes=value(metadata, "wal_bytes"),
            volume_used_bytes=value(metadata, "volume_used_bytes"),
            volume_total_bytes=value(metadata, "volume_total_bytes"),
            cache_hit_ratio=value(metadata, "cache_hit_ratio"),
            imported=[(str(day), int(size)) for day, size in value(metadata, "imported_history", [])],
        )


@dataclass(frozen=True)
class ForecastFigures:
    """One `capacity_forecast` materialization. `days_to_warning` / `days_to_full` are the EARLIER of
    the two models' crossings, and `warning_model` / `full_model` name the model each comes from: the
    figures the headroom check judges, the report prints and the Prometheus gauge exports. The
    horizons are the chosen model's (`model`). Every model's own crossings are in `crossings`."""

    enough_history: bool
    method: str  # the model and why it was chosen, or why there is no forecast
    samples: int
    imported_samples: int
    horizons: dict[int, int] = field(default_factory=dict)  # days ahead -> forecast bytes
    model: str | None = None  # chosen by backtest: the horizons' model
    days_to_warning: int | None = None  # None: no crossing forecast (or no forecast)
    days_to_full: int | None = None
    warning_model: str | None = None
    full_model: str | None = None
    crossings: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)  # model -> (warning, full)

    def to_metadata(self) -> dict:
        metadata = {
            "enough_history": dg.MetadataValue.bool(self.enough_history),
            "method": dg.MetadataValue.text(self.method),
            "samples": dg.MetadataValue.int(self.samples),
            "imported_samples": dg.MetadataValue.int(self.imported_samples),
        }
        for days, size in self.horizons.items():
            metadata[f"forecast_{days}d_bytes"] = dg.MetadataValue.int(int(size))
        if self.model is not None:
            metadata["model"] = dg.MetadataValue.text(self.model)
        for name, model in (("days_to_warning", self.warning_model), ("days_to_full", self.full_model)):
            if getattr(self, name) is not None:
                metadata[name] = dg.MetadataValue.int(getattr(self, name))
                metadata[f"{name}_model"] = dg.MetadataValue.text(model or "")
        if self.crossings:
            metadata["model_crossings"] = dg.MetadataValue.json(
                {name: {"days_to_warning": w, "days_to_full": f} for name, (w, f) in self.crossings.items()}
            )
        return with_sizes(metadata)

    @classmethod
    def from_metadata(cls, metadata) -> "ForecastFigures":
        return cls(
            enough_history=bool(value(metadata, "enough_history", False)),
            method=str(value(metadata, "method", "")),
            samples=int(value(metadata, "samples", 0)),
            imported_samples=int(value(metadata, "imported_samples", 0)),
            horizons={
                days: int(size) for days in HORIZONS if (size := value(metadata, f"forecast_{days}d_bytes")) is not None
            },
            model=value(metadata, "model"),
            days_to_warning=value(metadata, "days_to_warning"),
            days_to_full=value(metadata, "days_to_full"),
            warning_model=value(metadata, "days_to_warning_model"),
            full_model=value(metadata, "days_to_full_model"),
            crossings={
                name: (c.get("days_to_warning"), c.get("days_to_full"))
                for name, c in (value(metadata, "model_crossings") or {}).items()
            },
        )

    @property
    def days_to_full_or_inf(self) -> float | None:
        """For the gauge: None without a forecast, infinity when no model crosses."""
        if not self.enough_history:
            return None
        return math.inf if self.days_to_full is None else float(self.days_to_full)

    def crossing_text(self, kind: str) -> str:
        """'in 41 days (damped Holt trend; robust linear trend: 287 days)': one phrasing for the
        check, the report and the forecast's summary. kind: 'warning' or 'full'."""
        days, model = (
            (self.days_to_warning, self.warning_model) if kind == "warning" else (self.days_to_full, self.full_model)
        )
        index = 0 if kind == "warning" else 1
        others = [
            f"{name}: {'in ' + str(c[index]) + ' days' if c[index] is not None else 'no crossing'}"
            for name, c in self.crossings.items()
            if name != model
        ]
        if days is None:
            return "no crossing forecast within ten years by either model"
        return f"in {days} days ({model}" + (f"; {'; '.join(others)}" if others else "") + ")"


@dataclass(frozen=True)
class Headroom:
    """`capacity_headroom`'s figures: the forecast's days until the warning ratio / a full volume
    (the earlier model's; None: no crossing forecast)."""

    days_to_warning: int | None
    days_to_full: int | None

    def to_metadata(self) -> dict:
        metadata: dict = {"forecast_made": True}
        for name in ("days_to_warning", "days_to_full"):
            if getattr(self, name) is not None:
                metadata[name] = getattr(self, name)
        return metadata

    @classmethod
    def from_metadata(cls, metadata) -> "Headroom | None":
        """None when the check made no forecast (too little history)."""
        if not value(metadata, "forecast_made", False):
            return None
        return cls(value(metadata, "days_to_warning"), value(metadata, "days_to_full"))


def history_points(records) -> list[tuple[dt.datetime, float, int | None, bool]]:
    """(time, used bytes, volume bytes, imported?) from `capacity_sample` materialization records:
    the capacity history kept in Dagster's event log when there is no metrics database."""
    points = []
    for record in records:
        figures = SampleFigures.from_metadata(materialization_metadata(record))
        if figures is None:
            continue
        at = dt.datetime.fromtimestamp(record.timestamp, dt.UTC)
        points.append((at, float(figures.used_bytes), figures.volume_total_bytes, False))
        for day, size in figures.imported:
            moment = dt.datetime.fromisoformat(day)
            points.append((moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC), float(size), None, True))
    return points
