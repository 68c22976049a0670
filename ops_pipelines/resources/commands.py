"""Every external program (initdb, pg_ctl, pg_dump, pg_restore ...) is run from here.

Argument lists only (never a shell), an explicit environment, a timeout, stderr kept for the error
message, and the whole process group killed on timeout or cancellation. Passwords travel in the
child's environment (PGPASSWORD), never on its command line where `ps` would show them.
"""

import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from ops_pipelines.errors import CommandFailed

# libpq connection parameters and the environment variables libpq reads for them.
_LIBPQ_ENV = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "dbname": "PGDATABASE",
    "user": "PGUSER", "password": "PGPASSWORD", "passfile": "PGPASSFILE",
    "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY", "connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS",
    "application_name": "PGAPPNAME", "target_session_attrs": "PGTARGETSESSIONATTRS",
}


@dataclass(frozen=True)
class CommandResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def libpq_env(dsn: str) -> dict[str, str]:
    """PG* variables equivalent to `dsn`, so tools connect without the DSN on their command line."""
    env = {}
    for key, value in conninfo_to_dict(dsn).items():
        if key not in _LIBPQ_ENV:
            raise CommandFailed(f"connection parameter {key!r} cannot be passed to PostgreSQL tools")
        env[_LIBPQ_ENV[key]] = str(value)
    env.setdefault("PGAPPNAME", "ops_pipelines")
    return env


def run(
    args: Sequence[str | Path],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    as_user: str | None = None,
    cwd: str | Path | None = None,
    ok_codes: Sequence[int] = (0,),
) -> CommandResult:
    """Run to completion and capture output; raise `CommandFailed` with stderr's last line."""
    argv = [str(a) for a in args]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(env, as_user),
        cwd=cwd,
        user=as_user,
        start_new_session=True,  # its own process group, so a kill reaches its children too
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise CommandFailed(f"{Path(argv[0]).name} timed out after {timeout:.0f}s") from None
    except BaseException:  # cancelled (KeyboardInterrupt, Dagster termination): leave nothing
        kill_group(process)
        raise
    result = CommandResult(tuple(argv), process.returncode, stdout, stderr)
    if process.returncode not in ok_codes:
        raise CommandFailed(f"{Path(argv[0]).name} exited with {process.returncode}: {last_line(stderr)}")
    return result


def child_env(extra: Mapping[str, str] | None, as_user: str | None = None) -> dict[str, str]:
    """A small, explicit environment: PATH, locale, and what the caller passes."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TZ") if key in os.environ}
    env.setdefault("LC_ALL", "C.UTF-8")
    if as_user:
        env["HOME"] = pwd.getpwnam(as_user).pw_dir
    env.update(extra or {})
    return env


def kill_group(process: subprocess.Popen) -> None:
    """Stop the process and everything it started: SIGTERM, then SIGKILL after 5 s."""
    if process.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no error output)"


def find_program(name: str, bin_dir: Path | None = None) -> Path:
    """`bin_dir/name` when given, else the newest PostgreSQL's, else PATH."""
    candidates = [bin_dir] if bin_dir else [pg_bin_dir(), None]
    for directory in candidates:
        path = shutil.which(name, path=str(directory)) if directory else shutil.which(name)
        if path:
            return Path(path)
    where = f"in {bin_dir}" if bin_dir else "in /usr/lib/postgresql/*/bin or on PATH"
    raise CommandFailed(f"{name} not found {where}: install the PostgreSQL server package (apt-get install postgresql)")


def pg_bin_dir(min_major: int | None = None) -> Path | None:
    """The newest installed PostgreSQL's bin dir (Debian layout), or OPS_PG_BIN_DIR when set."""
    override = os.environ.get("OPS_PG_BIN_DIR")
    if override:
        return Path(override)
    found = []
    for path in Path("/usr/lib/postgresql").glob("*/bin"):
        if path.parent.name.isdigit() and (path / "initdb").exists():
            found.append((int(path.parent.name), path))
    found = [(major, path) for major, path in found if min_major is None or major >= min_major]
    return max(found)[1] if found else None
