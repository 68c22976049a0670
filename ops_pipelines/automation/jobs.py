"""Jobs: one per database and capability (so the database's pool serialises them), plus `backup_all`."""

import dagster as dg

from ops_pipelines.assets.common import asset_key
from ops_pipelines.config import DatabaseConfig, OpsConfig


def backup_job_name(db: DatabaseConfig) -> str:
    return f"backup_{db.name}"


def restore_test_job_name(db: DatabaseConfig) -> str:
    return f"restore_test_{db.name}"


def vacuum_job_name(db: DatabaseConfig) -> str:
    return f"vacuum_{db.name}"


def reindex_job_name(db: DatabaseConfig) -> str:
    return f"reindex_{db.name}"


def window_job_name(db: DatabaseConfig) -> str:
    return f"maintenance_window_{db.name}"


def archive_job_name(db: DatabaseConfig) -> str:
    return f"archive_{db.name}"


def capacity_job_name(db: DatabaseConfig) -> str:
    return f"capacity_{db.name}"


def has_window_work(db: DatabaseConfig) -> bool:
    return bool(db.maintenance_window.vacuum_full_tables or db.maintenance_window.full_reindex)


def backup_asset_keys(config: OpsConfig, db: DatabaseConfig) -> list[dg.AssetKey]:
    names = ["backup", "backup_retention"] + (["offsite_copy"] if config.backup_store.s3 else [])
    return [asset_key(db, name) for name in names]


def build(config: OpsConfig) -> list:
    jobs = []
    for db in config.databases:
        def job(name: str, selection: dg.AssetSelection, description: str) -> None:
            jobs.append(dg.define_asset_job(name, selection=selection, description=description,
                                            tags={"ops_pipelines/database": db.name}))

        def assets(*names: str) -> dg.AssetSelection:
            return dg.AssetSelection.assets(*(asset_key(db, n) for n in names))

        # restore_recent runs with every backup too, so a lapse in restore testing shows daily.
        restore_recent = dg.AssetCheckKey(asset_key(db, "restore_test"), "restore_recent")
        job(backup_job_name(db),
            dg.AssetSelection.assets(*backup_asset_keys(config, db)) | dg.AssetSelection.checks(restore_recent),
            f"Back up {db.name}, copy it off-site when configured, apply retention; with every check.")
        job(restore_test_job_name(db), assets("restore_test"),
            f"Restore a backup of {db.name} into a sandbox and verify it against its manifest.")
        job(vacuum_job_name(db), assets("table_stats", "vacuum_analyze"),
            f"Refresh table statistics of {db.name}, then VACUUM (ANALYZE) where they say it helps.")
        job(reindex_job_name(db), assets("table_stats", "reindex"),
            f"Drop invalid indexes of {db.name} and rebuild bloated ones online.")
        if config.metrics.dsn:
            job(capacity_job_name(db), assets("capacity_sample", "capacity_forecast"),
                f"Sample the size of {db.name} into the metrics schema, then forecast its growth.")
        if db.archive:
            job(archive_job_name(db), assets(*(f"archive_{rule.name}" for rule in db.archive)),
                f"Archival rules of {db.name}, one after the other (they share the database's pool).")
        if has_window_work(db):
            job(window_job_name(db), assets("maintenance_window"),
                f"VACUUM FULL / full reindex of {db.name}, inside the monthly window only.")
    every_backup = [key for db in config.databases for key in backup_asset_keys(config, db)]
    jobs.append(dg.define_asset_job(
        "backup_all",
        selection=dg.AssetSelection.assets(*every_backup),
        description="Back up every configured database (databases run in parallel up to the run limit).",
    ))
    return jobs
