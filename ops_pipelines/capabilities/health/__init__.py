"""`health`: probed by `health_probe_sensor` every schedules.health, without runs (sensors.py)."""

from ops_pipelines.capabilities.health import assets, sensors
from ops_pipelines.capability import Capability, Part, always

CAPABILITY = Capability("health", (Part(assets.build, always("health")),), schedule=None, sensors=sensors.build)
