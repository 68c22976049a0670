"""`vacuum`: VACUUM ANALYZE of the tables that need it, on fresh table statistics."""

from ops_pipelines.capabilities.vacuum import assets
from ops_pipelines.capability import Capability, Part, always

CAPABILITY = Capability(
    "vacuum",
    (Part(assets.build, always("vacuum_analyze")),),
    schedule="vacuum",
    refreshes=("table_stats",),
    maintenance=True,
)
