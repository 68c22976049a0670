"""The cluster programs of one PostgreSQL installation: initdb, postgres (single-user mode, and its
version) and pg_ctl. They run as `as_user` (the server's OS user when we are root: PostgreSQL
refuses to run as root)."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.programs.version import Version, version


@dataclass(frozen=True)
class PgServer:
    bin_dir: Path | None  # None: the newest installed PostgreSQL, else PATH
    as_user: str | None = None

    def _program(self, name: str) -> Path:
        return commands.find_program(name, self.bin_dir)

    def version(self) -> Version:
        return version(self._program("postgres"))

    def postgres_path(self) -> Path:
        return self._program("postgres")

    def initdb(self, data_dir: Path, *, superuser: str, auth: Sequence[str]) -> None:
        """A new cluster in `data_dir`: UTF8, C.UTF-8, no fsync (a throwaway); `auth` is the initdb
        authentication options (a password only ever through `--pwfile`)."""
        args = [self._program("initdb"), "-D", data_dir, "-U", superuser, *auth]
        commands.run([*args, "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"], timeout=120, as_user=self.as_user)

    def single_user(self, data_dir: Path, statement: str, database: str = "postgres") -> None:
        """Run one statement in single-user mode, before the server first listens. It is read from
        stdin, so a password in it never reaches an argument list."""
        args = [self._program("postgres"), "--single", "-D", data_dir, "-c", "log_statement=none", database]
        commands.run(args, timeout=120, as_user=self.as_user, stdin_text=statement + "\n")

    def start(self, data_dir: Path, log_file: Path, timeout: int, options: str | None = None) -> None:
        """Start and wait until it accepts connections (CommandFailed when it did not in `timeout`)."""
        extra = ["-o", options] if options else []
        args = [self._program("pg_ctl"), "-D", data_dir, "-l", log_file, *extra, "-w", "-t", str(timeout), "start"]
        commands.run(args, timeout=timeout + 10, as_user=self.as_user)

    def running(self, data_dir: Path) -> bool:
        """pg_ctl status: 0 running, 3 not running, 4 no accessible data directory."""
        args = [self._program("pg_ctl"), "-D", data_dir, "status"]
        return commands.run(args, timeout=30, as_user=self.as_user, ok_codes=(0, 3, 4)).returncode == 0

    def stop(self, data_dir: Path, timeout: int, mode: str = "fast") -> None:
        """Stop and wait: `fast` rolls back sessions and shuts down cleanly, `immediate` just stops."""
        args = [self._program("pg_ctl"), "-D", data_dir, "-m", mode, "-w", "-t", str(timeout), "stop"]
        commands.run(args, timeout=timeout + 10, as_user=self.as_user)
