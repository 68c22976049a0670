"""`offsite_restore_test`: the off-site drill, monthly and after every N off-site copies (sensor)."""

from ops_pipelines.capabilities.offsite_restore_test import assets, sensors
from ops_pipelines.capability import FIRST_WEEK, Capability, Part, with_s3

CAPABILITY = Capability(
    "offsite_restore_test",
    (Part(assets.build, with_s3("offsite_restore_test")),),
    schedule=FIRST_WEEK,
    sensors=sensors.build,
)
