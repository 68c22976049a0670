"""The `recover` job: `ops-pipelines recover` from the launchpad, for when the UI is up. Never
scheduled: a recovery is a decision. Same steps, same refusals (core/backups/recover.py)."""

from typing import Literal

import dagster as dg

from ops_pipelines.adapters.storage import local_storage
from ops_pipelines.config import OpsConfig, launchpad_dsn
from ops_pipelines.core.backups.catalog import list_backups
from ops_pipelines.core.backups.recover import backup_store, choose_backup, judge_backups, recover
from ops_pipelines.errors import OpsError


class RecoverConfig(dg.Config):
    target: str  # the database to create, or with replace: true to swap (the old one is kept)
    # The server to restore on; empty: the configured database's. No password here (Dagster keeps the
    # run's config in plain text): write ${VAR}, expanded in the run, or rely on ~/.pgpass / PGPASSWORD.
    target_dsn: str = ""
    backup: str = ""  # a backup stamp; empty: the newest one a restore test proved
    source: Literal["local", "s3"] = "local"
    replace: bool = False
    jobs: int = 2
    with_roles: bool = False  # create the backup's roles the server lacks (no password), existing ones untouched


def build(ops_config: OpsConfig) -> dg.JobDefinition:
    # Partitioned by database, like every job: the run queue then holds a recovery behind (and ahead of)
    # the database's other runs — a backup or an archival never runs during its recovery.
    databases = dg.StaticPartitionsDefinition([db.name for db in ops_config.databases])

    @dg.op(
        description="Restores a backup into <target>__restoring, verifies every table's row count against the "
        "manifest, then renames it to the target (an existing one is refused unless replace: true).",
    )
    def recover_database(context: dg.OpExecutionContext, config: RecoverConfig) -> dg.Output:
        try:
            return _recover(context, config)
        except OpsError as exc:  # the one-line cause, as the CLI prints it; the target is as it was
            raise dg.Failure(description=str(exc)) from None

    def _recover(context: dg.OpExecutionContext, config: RecoverConfig) -> dg.Output:
        db = ops_config.database(context.partition_key)
        target_dsn = launchpad_dsn(config.target_dsn, "recover_database.config.target_dsn")
        storage = backup_store(ops_config, config.source)
        entries = list_backups(storage, db.name)
        entry = choose_backup(
            entries, config.backup or None, judge_backups(ops_config, storage, entries), log=context.log.info
        )
        done = recover(
            db,
            storage,
            entry,
            config.target,
            target_dsn or None,
            replace=config.replace,
            jobs=config.jobs,
            with_roles=config.with_roles,
            log=context.log.info,
            local=local_storage(ops_config),
            how_to_replace="set replace: true in the launchpad",
        )
        metadata = {
            "backup": done.backup,
            "target": done.target,
            "tables_checked": done.tables_checked,
            "rows_checked": done.rows_checked,
            "restore_seconds": round(done.restored_seconds, 2),
        }
        if done.replaced:
            metadata["replaced_kept_as"] = done.replaced
            context.log.info(f'the replaced database is kept; when satisfied: DROP DATABASE "{done.replaced}";')
        return dg.Output(None, metadata=metadata)

    @dg.job(
        name="recover",
        partitions_def=databases,
        description="Recovery of one database (the partition) into a named target (launchpad config: target, "
        "backup, replace ...). Never scheduled. The same as `ops-pipelines recover` on the command line.",
        tags={"ops_pipelines/capability": "recover"},
    )
    def recover_job():
        recover_database()

    return recover_job
