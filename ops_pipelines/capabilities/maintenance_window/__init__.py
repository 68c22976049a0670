"""`maintenance_window`: the monthly VACUUM FULL and full reindex, for databases that configure them."""

from ops_pipelines.capabilities.maintenance_window import assets
from ops_pipelines.capability import FIRST_WEEK, Capability, Part
from ops_pipelines.config import DatabaseConfig, OpsConfig


def _with_window_work(config: OpsConfig, db: DatabaseConfig) -> list[str]:
    work = db.maintenance_window
    return ["maintenance_window"] if work.vacuum_full_tables or work.full_reindex else []


CAPABILITY = Capability(
    "maintenance_window", (Part(assets.build, _with_window_work),), schedule=FIRST_WEEK, maintenance=True
)
