"""`backup`: the dump, its retention and its off-site copy; the missing-backup sensor."""

from ops_pipelines.capabilities.backup import assets, offsite, retention, sensors
from ops_pipelines.capability import Capability, Part, always, with_s3

CAPABILITY = Capability(
    "backup",
    (
        Part(assets.build, always("backup")),
        Part(retention.build, always("backup_retention")),
        Part(offsite.build, with_s3("offsite_copy")),
    ),
    schedule="backup",
    extra_checks=(("restore_test", "restore_recent"),),  # a lapse in restore testing shows with every backup
    sensors=sensors.build,
)
