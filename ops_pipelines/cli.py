"""`ops-pipelines`: recovery from the command line, for the DBA at 3 a.m. when the UI may be down.

    ops-pipelines backups DATABASE [--from local|s3]    (also re-opens a target a killed recovery left closed)
    ops-pipelines recover DATABASE --target NAME [--target-dsn DSN] [--backup STAMP] [--from local|s3]
                                   [--replace] [--jobs N]

It reads the config named by OPS_PIPELINES_CONFIG, like the code location. Every failure is one line
on stderr and a nonzero exit; the target database is then as it was.
"""

import argparse
import datetime as dt
import sys

from ops_pipelines.adapters.postgres import with_dbname
from ops_pipelines.adapters.storage import local_storage
from ops_pipelines.config import load_config_from_env
from ops_pipelines.core.backups.catalog import list_backups
from ops_pipelines.core.backups.recover import (
    backup_store,
    choose_backup,
    describe_backups,
    judge_backups,
    recover,
    repair_server,
)
from ops_pipelines.errors import OpsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ops-pipelines",
        description="Recovery of a configured database from its backups (reads $OPS_PIPELINES_CONFIG).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("backups", help="list a database's backups: verified or not, size, age")
    listing.add_argument("database")
    listing.add_argument("--from", dest="source", choices=("local", "s3"), default="local")
    restore = commands.add_parser(
        "recover",
        help="restore a backup into a database, verify it, then give it the target's name",
        description="Restores into <target>__restoring, verifies every table's row count against the backup's "
        "manifest, then renames it to the target. An existing target holding tables is refused unless --replace; "
        "then it is kept as <target>__replaced_<stamp>.",
    )
    restore.add_argument("database", help="the configured database whose backup to restore")
    restore.add_argument("--target", required=True, help="the database to create (or, with --replace, replace)")
    restore.add_argument("--target-dsn", help="the server to restore on (default: the configured database's)")
    restore.add_argument("--backup", help="a backup stamp (default: the newest one a restore test proved)")
    restore.add_argument("--from", dest="source", choices=("local", "s3"), default="local")
    restore.add_argument("--replace", action="store_true", help="swap an existing target (it is kept, renamed)")
    restore.add_argument("--jobs", type=int, default=2, help="pg_restore jobs (default 2)")
    restore.add_argument(
        "--with-roles",
        action="store_true",
        help="first create the roles the backup names that the server lacks (no password; existing ones untouched)",
    )
    args = parser.parse_args(argv)
    try:
        config = load_config_from_env()
        names = [d.name for d in config.databases]
        if args.database not in names:
            raise OpsError(
                f"no database {args.database} in {config.source or 'the config'} (it has: {', '.join(names)})"
            )
        db = config.database(args.database)
        storage = backup_store(config, args.source)
        entries = list_backups(storage, db.name)
        judged = judge_backups(config, storage, entries)
        if args.command == "backups":
            lines = describe_backups(entries, judged, dt.datetime.now(dt.UTC))
            noun = "backup" if len(entries) == 1 else "backups"
            print(f"{len(entries)} {noun} of {db.name} in {storage.uri(db.name)}, newest first:")
            print("\n".join(lines) if lines else "(none)")
            _repair(with_dbname(db.dsn.get_secret_value(), "postgres"))
            return 0
        entry = choose_backup(entries, args.backup, judged, log=say)
        say(f"recovering {db.name} from backup {entry.stamp} ({storage.uri(db.name)}) into {args.target}")
        done = recover(
            db,
            storage,
            entry,
            args.target,
            args.target_dsn,
            replace=args.replace,
            jobs=args.jobs,
            with_roles=args.with_roles,
            log=say,
            local=local_storage(config),
        )
        say(
            f"done: {args.target} holds backup {done.backup} ({done.tables_checked} tables, {done.rows_checked:,} "
            f"rows verified; restored in {done.restored_seconds:.1f} s)"
        )
        if done.replaced:
            say(f'the replaced database is kept; when satisfied: DROP DATABASE "{done.replaced}";')
        return 0
    except OpsError as exc:
        print(f"ops-pipelines: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a missing directory: one line, not a traceback
        print(f"ops-pipelines: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1


def _repair(server: str) -> None:
    """A target a killed recovery left closed to connections is re-opened here too (the DBA's first
    command after an incident is often this listing)."""
    try:
        for line in repair_server(server, say):
            del line  # said as it was done
    except OpsError as exc:
        say(f"could not look for databases an interrupted recovery left closed on the server: {exc}")


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
