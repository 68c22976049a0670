"""`integrity`: amcheck of tables and indexes, on its own schedule."""

from ops_pipelines.capabilities.integrity import assets
from ops_pipelines.capability import Capability, Part, always

CAPABILITY = Capability("integrity", (Part(assets.build, always("integrity")),), schedule="integrity")
