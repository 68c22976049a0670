"""`capacity`: the daily size sample and the growth forecast."""

from ops_pipelines.capabilities.capacity import assets
from ops_pipelines.capability import Capability, Part, always

CAPABILITY = Capability(
    "capacity", (Part(assets.build, always("capacity_sample", "capacity_forecast")),), schedule="capacity_sample"
)
