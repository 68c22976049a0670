"""`reindex`: REINDEX CONCURRENTLY of bloated or invalid indexes, on fresh table statistics."""

from ops_pipelines.capabilities.reindex import assets
from ops_pipelines.capability import Capability, Part, always

CAPABILITY = Capability(
    "reindex",
    (Part(assets.build, always("reindex")),),
    schedule="reindex",
    refreshes=("table_stats",),
    maintenance=True,
)
