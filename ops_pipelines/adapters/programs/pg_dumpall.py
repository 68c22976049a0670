"""pg_dumpall --globals-only: the server's roles (never their passwords), memberships and tablespaces."""

from pathlib import Path

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.commands import ToolConnection


def globals_only(bin_dir: Path, connection: ToolConnection) -> str:
    """The globals as SQL; CommandFailed when this role may not read them."""
    pg_dumpall = commands.find_program("pg_dumpall", bin_dir)
    args = [pg_dumpall, "--globals-only", "--no-role-passwords", "--no-password", f"--dbname={connection.dbname}"]
    return commands.run(args, timeout=300, env=connection.env).stdout
