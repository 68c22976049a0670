"""The job definitions: one asset job per capability job the registry derives (`backup_job`,
`vacuum_job` ...), partitioned by database, which schedules and sensors launch for one database at a
time (a run per partition); and the weekly report's job."""

import dagster as dg

from ops_pipelines.automation.report import REPORT_KEY
from ops_pipelines.capability import CapabilityJob

REPORT_JOB = "maintenance_report_job"


def build(jobs: list[CapabilityJob]) -> list:
    return [
        *(job.definition() for job in jobs),
        dg.define_asset_job(REPORT_JOB, selection=[REPORT_KEY], description="The weekly maintenance report."),
    ]
