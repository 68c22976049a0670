"""Where backups live: one small interface (base.py), one module per backend."""

from ops_pipelines.adapters.storage.base import BackupStorage, StorageError, StoredObject
from ops_pipelines.adapters.storage.local import LocalStorage
from ops_pipelines.config import OpsConfig


def local_storage(config: OpsConfig) -> LocalStorage:
    return LocalStorage(config.backup_store.local_dir)


def offsite_storage(config: OpsConfig) -> BackupStorage | None:
    """The S3 store when configured; boto3 is imported only then."""
    if config.backup_store.s3 is None:
        return None
    from ops_pipelines.adapters.storage.s3 import S3Storage

    return S3Storage.from_config(config.backup_store.s3)


__all__ = ["BackupStorage", "LocalStorage", "StorageError", "StoredObject", "local_storage", "offsite_storage"]
