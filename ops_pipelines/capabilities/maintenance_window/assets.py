"""`maintenance_window` (partitioned by the databases with such work): VACUUM FULL of the listed
tables (and REINDEX DATABASE when set): work that locks tables for its whole duration, so it refuses
to run outside the monthly window unless the launchpad sets `override_window: true`. Inside the
window too, it runs only from its schedule or with `confirm: true` (common.refused)."""

import datetime as dt
from collections.abc import Iterator

import dagster as dg

from ops_pipelines.capabilities.common import DELIBERATE, DeliberateConfig, fleet_asset, refused
from ops_pipelines.capability import Capability, Fleets
from ops_pipelines.config import OpsConfig
from ops_pipelines.core.maintenance.window import require_window, run_window_work
from ops_pipelines.localtime import local_time
from ops_pipelines.records.metadata import table, with_sizes


class WindowConfig(DeliberateConfig):
    override_window: bool = False  # run outside the window: you accept locking the ERP out


def build(config: OpsConfig, capability: Capability, fleets: Fleets) -> dg.Definitions:
    fleet = fleets["maintenance_window"]
    ops_config = config  # the asset's own `config` parameter is the launchpad's WindowConfig

    @fleet_asset(
        capability,
        "maintenance_window",
        fleet,
        deps=("table_stats",),
        description=(
            "Monthly window work on the database: VACUUM FULL of its maintenance_window.vacuum_full_tables, and "
            "REINDEX DATABASE when full_reindex is set. Refuses to run outside the window without override_window."
            f"\n\n{DELIBERATE}"
        ),
        output_required=False,
    )
    def maintenance_window(context: dg.AssetExecutionContext, config: WindowConfig) -> Iterator[dg.MaterializeResult]:
        db = fleet.database(context.partition_key)
        if refused(context, config.confirm or config.override_window, db.name):
            return
        now = dt.datetime.now(dt.UTC)
        state = require_window(ops_config, now, config.override_window)
        if not state.inside:
            context.log.warning(f"{db.name}: running outside the maintenance window (override_window is set)")
        actions = run_window_work(db, log=lambda message: context.log.info(f"{db.name}: {message}"))
        done = [a for a in actions if not a.skipped]
        yield dg.MaterializeResult(
            metadata=with_sizes(
                {
                    "inside_window": dg.MetadataValue.bool(state.inside),
                    "window_opened": dg.MetadataValue.text(local_time(state.opened_at, ops_config.timezone) or "-"),
                    "done": dg.MetadataValue.int(len(done)),
                    "skipped": dg.MetadataValue.int(len(actions) - len(done)),
                    "bytes_reclaimed": dg.MetadataValue.int(
                        sum((a.bytes_before or 0) - (a.bytes_after or 0) for a in done)
                    ),
                    "actions": table(
                        [
                            {
                                "target": a.target,
                                "bytes_before": a.bytes_before,
                                "bytes_after": a.bytes_after,
                                "seconds": round(a.seconds, 3),
                                "result": a.skipped or "done",
                            }
                            for a in actions
                        ],
                        target="string",
                        bytes_before="int",
                        bytes_after="int",
                        seconds="float",
                        result="string",
                    ),
                }
            )
        )

    return dg.Definitions(assets=[maintenance_window])
