"""Restore into a fresh `<db>_restore_check` database on a named server, dropped afterwards
(what the runbooks' restore-database.sh does). The server must be at least the dump's version."""

import contextlib
from collections.abc import Iterator

from psycopg import sql

from ops_pipelines.adapters.postgres import connect, describe_dsn, one, with_dbname
from ops_pipelines.adapters.sandbox.base import RestoreSandbox, RestoreTarget, SandboxError


class ScratchDatabaseSandbox(RestoreSandbox):
    kind = "scratch_database"

    def __init__(self, server_dsn: str, database: str) -> None:
        self.server_dsn = server_dsn
        self.database = database

    @contextlib.contextmanager
    def open(self, min_major: int) -> Iterator[RestoreTarget]:
        name = sql.Identifier(self.database)
        with connect(self.server_dsn, autocommit=True, purpose="restore_test") as conn:
            major = one(conn.execute("SELECT current_setting('server_version_num')::int / 10000 AS major"))["major"]
            if major < min_major:
                raise SandboxError(
                    f"scratch server {describe_dsn(self.server_dsn)} runs PostgreSQL {major}, older than the dump's "
                    f"({min_major})"
                )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))  # a leftover
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
        try:
            yield RestoreTarget(
                with_dbname(self.server_dsn, self.database),
                None,
                f"scratch database {self.database} on {describe_dsn(self.server_dsn)}",
            )
        finally:
            with connect(self.server_dsn, autocommit=True, purpose="restore_test") as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
