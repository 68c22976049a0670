"""Keeps the node_exporter textfile (`metrics.textfile_path`) current for Grafana and Alertmanager.

A sensor rewrites it, atomically, whenever a run has finished since it last wrote, and at least every
REFRESH_SECONDS so backups made outside Dagster show too (node_exporter's own
`node_textfile_mtime_seconds` then tells when this sensor stopped). The file is written where the
code location's server runs: node_exporter's textfile directory must be on that host or volume.
"""

import datetime as dt
import json
import time

import dagster as dg

from ops_pipelines.adapters.storage import local_storage, offsite_storage
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.backups.proof import Proof, store_proof
from ops_pipelines.core.backups.recovery_status import recovery_status
from ops_pipelines.core.prometheus import DatabaseFigures, render
from ops_pipelines.errors import OpsError
from ops_pipelines.files import atomic_write_text
from ops_pipelines.history import (
    FINISHED_RUN_STATUSES,
    failing_checks,
    latest_materializations,
    materialization_metadata,
)
from ops_pipelines.records.capacity import ForecastFigures

REFRESH_SECONDS = 600
FORECAST = dg.AssetKey("capacity_forecast")


def build(config: OpsConfig, asset_graph) -> list[dg.SensorDefinition]:
    path = config.metrics.textfile_path
    if path is None:
        return []
    checks = sorted(asset_graph.asset_check_keys, key=lambda k: k.to_user_string())

    @dg.sensor(
        name="metrics_textfile_sensor",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Rewrites {path} (Prometheus gauges per database) after every finished run.",
    )
    def metrics_textfile(context: dg.SensorEvaluationContext):
        state = json.loads(context.cursor) if context.cursor else {}
        newest = context.instance.get_run_records(
            dg.RunsFilter(statuses=FINISHED_RUN_STATUSES), limit=1, order_by="update_timestamp"
        )
        newest_run = newest[0].update_timestamp.isoformat() if newest else ""
        due = time.time() - state.get("written_at", 0) > REFRESH_SECONDS
        if newest_run == state.get("newest_run") and path.exists() and not due:
            return dg.SkipReason(f"no run finished since {path} was written")
        figures = gather_figures(config, context.instance, checks)
        write_textfile(path, figures)
        context.update_cursor(json.dumps({"newest_run": newest_run, "written_at": time.time()}))
        return dg.SkipReason(f"wrote the gauges of {len(figures)} databases to {path}")

    return [metrics_textfile]


def gather_figures(
    config: OpsConfig, instance: dg.DagsterInstance, check_keys: list[dg.AssetCheckKey]
) -> list[DatabaseFigures]:
    storage = local_storage(config)
    now = dt.datetime.now(dt.UTC)
    failed = failing_checks(instance, check_keys)
    # the newest forecast of every database in two queries (not a query per database)
    forecasts = latest_materializations(instance, FORECAST)
    offsite = offsite_storage(config)
    figures = []
    for db in config.databases:
        status = recovery_status(storage, db.name, now, trend_days=1)
        verified = status.verified
        failing = failed.get(db.name, [])
        figures.append(
            DatabaseFigures(
                database=db.name,
                backup_last_timestamp=status.newest_backup_at.timestamp() if status.newest_backup_at else None,
                backup_last_bytes=status.newest_backup_bytes,
                restore_verified_timestamp=verified.finished_at.timestamp()
                if verified and verified.finished_at
                else None,
                restore_seconds=verified.restore_seconds if verified else None,
                offsite_verified_timestamp=None if offsite is None else _proof_timestamp(store_proof(offsite, db.name)),
                check_errors=sum(1 for f in failing if f.severity == "error"),
                check_warnings=sum(1 for f in failing if f.severity == "warning"),
                capacity_days_to_full=_days_to_full(forecasts.get(db.name)),
            )
        )
    return figures


def write_textfile(path, figures: list[DatabaseFigures]) -> None:
    try:
        # 0644: node_exporter reads it as its own user; it holds gauges only, no names of tables or accounts.
        atomic_write_text(path, render(figures, time.time()), mode=0o644)
    except OSError as exc:
        raise OpsError(f"cannot write the metrics textfile {path}: {exc.strerror or exc}") from None


def _proof_timestamp(proof: Proof | None) -> float:
    """When the newest off-site backup standing proven was proven (0: none stands)."""
    return proof.finished_at.timestamp() if proof is not None and proof.finished_at else 0


def _days_to_full(forecast) -> float | None:
    """What capacity_headroom judges (the earlier of the two models' crossings), as the forecast
    recorded it; None: no forecast yet."""
    return ForecastFigures.from_metadata(materialization_metadata(forecast)).days_to_full_or_inf if forecast else None
