"""`table_stats`: per-table sizes and statistics, refreshed first by vacuum and reindex runs."""

from ops_pipelines.capabilities.table_stats import assets
from ops_pipelines.capability import Capability, Part, always

CAPABILITY = Capability("table_stats", (Part(assets.build, always("table_stats")),), schedule=None)
