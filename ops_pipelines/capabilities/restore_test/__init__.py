"""`restore_test`: restore a backup into a sandbox and verify it; a test of every new backup (sensor)."""

from ops_pipelines.capabilities.restore_test import assets, sensors
from ops_pipelines.capability import FIRST_WEEK, Capability, Part, always

CAPABILITY = Capability(
    "restore_test", (Part(assets.build, always("restore_test")),), schedule=FIRST_WEEK, sensors=sensors.build
)
