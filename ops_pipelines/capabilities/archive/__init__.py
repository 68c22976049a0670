"""`archive`: one asset per archive rule of a database (`archive_<rule>`)."""

from ops_pipelines.capabilities.archive import assets
from ops_pipelines.capability import Capability, Part
from ops_pipelines.config import DatabaseConfig, OpsConfig


def _archive_rules(config: OpsConfig, db: DatabaseConfig) -> list[str]:
    return [f"archive_{rule.name}" for rule in db.archive]


CAPABILITY = Capability("archive", (Part(assets.build, _archive_rules),), schedule="archive", maintenance=True)
