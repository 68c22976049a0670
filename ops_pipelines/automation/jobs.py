"""Jobs: one per database and capability (so the database's pool serialises them), plus `*_all`."""

import dagster as dg

from ops_pipelines.assets.common import asset_key
from ops_pipelines.config import DatabaseConfig, OpsConfig


def backup_job_name(db: DatabaseConfig) -> str:
    return f"backup_{db.name}"


def backup_asset_keys(config: OpsConfig, db: DatabaseConfig) -> list[dg.AssetKey]:
    names = ["backup", "backup_retention"] + (["offsite_copy"] if config.backup_store.s3 else [])
    return [asset_key(db, name) for name in names]


def build(config: OpsConfig) -> list:
    jobs = [
        dg.define_asset_job(
            backup_job_name(db),
            selection=dg.AssetSelection.assets(*backup_asset_keys(config, db)),
            description=f"Back up {db.name}, copy it off-site when configured, apply retention; with every check.",
            tags={"ops_pipelines/database": db.name},
        )
        for db in config.databases
    ]
    every_backup = [key for db in config.databases for key in backup_asset_keys(config, db)]
    jobs.append(
        dg.define_asset_job(
            "backup_all",
            selection=dg.AssetSelection.assets(*every_backup),
            description="Back up every configured database (databases run in parallel up to the run limit).",
        )
    )
    return jobs
