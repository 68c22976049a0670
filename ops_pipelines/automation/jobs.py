"""Jobs: one per database and capability (so the database's pool serialises them), plus `*_all`."""

import dagster as dg

from ops_pipelines.assets.common import asset_key
from ops_pipelines.config import DatabaseConfig, OpsConfig


def backup_job_name(db: DatabaseConfig) -> str:
    return f"backup_{db.name}"


def restore_test_job_name(db: DatabaseConfig) -> str:
    return f"restore_test_{db.name}"


def backup_asset_keys(config: OpsConfig, db: DatabaseConfig) -> list[dg.AssetKey]:
    names = ["backup", "backup_retention"] + (["offsite_copy"] if config.backup_store.s3 else [])
    return [asset_key(db, name) for name in names]


def build(config: OpsConfig) -> list:
    jobs = []
    for db in config.databases:
        # restore_recent runs with every backup too, so a lapse in restore testing shows daily.
        restore_recent = dg.AssetCheckKey(asset_key(db, "restore_test"), "restore_recent")
        jobs.append(dg.define_asset_job(
            backup_job_name(db),
            selection=dg.AssetSelection.assets(*backup_asset_keys(config, db)) | dg.AssetSelection.checks(restore_recent),
            description=f"Back up {db.name}, copy it off-site when configured, apply retention; with every check.",
            tags={"ops_pipelines/database": db.name},
        ))
        jobs.append(dg.define_asset_job(
            restore_test_job_name(db),
            selection=dg.AssetSelection.assets(asset_key(db, "restore_test")),
            description=f"Restore a backup of {db.name} into a sandbox and verify it against its manifest.",
            tags={"ops_pipelines/database": db.name},
        ))
    every_backup = [key for db in config.databases for key in backup_asset_keys(config, db)]
    jobs.append(
        dg.define_asset_job(
            "backup_all",
            selection=dg.AssetSelection.assets(*every_backup),
            description="Back up every configured database (databases run in parallel up to the run limit).",
        )
    )
    return jobs
