"""Every external program (initdb, pg_ctl, pg_dump, pg_restore ...) is run from here; the typed
wrappers in `programs/` (one module per program) build their command lines and parse their output.

Argument lists only (never a shell), an explicit environment, a timeout, stderr kept for the error
message, and the whole process group killed on timeout or cancellation. Passwords travel in the
child's environment (PGPASSWORD), never on its command line where `ps` would show them.
"""

import collections
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ops_pipelines.errors import CommandFailed

# A line of a PostgreSQL tool's stderr that states a failure ("pg_dump: error: ...", "FATAL: ...").
_ERROR_LINE = re.compile(r"(^|\s)(error|fatal|ERROR|FATAL):\s")
_DETAIL_LINE = re.compile(r"(^|\s)(detail|hint|DETAIL|HINT):\s")


@dataclass(frozen=True)
class CommandResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class ToolConnection:
    """How a PostgreSQL tool reaches a database: `dbname` is the whole connection string less the
    password, for `--dbname` (every libpq parameter works: keepalives, channel_binding, service ...);
    the password travels in `env` (PGPASSWORD), never on the command line where `ps` shows it."""

    dbname: str
    env: dict[str, str]


def tool_connection(dsn: str, application_name: str = "ops_pipelines") -> ToolConnection:
    params = conninfo_to_dict(dsn)
    env = {}
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    if "sslpassword" in params:  # libpq reads it from no variable: it would have to go on the command line
        raise CommandFailed(
            "connection parameter sslpassword cannot be passed to PostgreSQL tools safely: "
            "use an unencrypted key file (mode 0600) or a service file"
        )
    params.setdefault("application_name", application_name)
    return ToolConnection(make_conninfo("", **params), env)


def run(
    args: Sequence[str | Path],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    as_user: str | None = None,
    cwd: str | Path | None = None,
    ok_codes: Sequence[int] = (0,),
    stdin_text: str | None = None,
) -> CommandResult:
    """Run to completion and capture output; raise `CommandFailed` with stderr's last line.
    `stdin_text`: what the program reads (secrets go here, never into its arguments)."""
    argv = [str(a) for a in args]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL if stdin_text is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(env, as_user),
        cwd=cwd,
        start_new_session=True,  # its own process group, so a kill reaches its children too
        **become(as_user),
    )
    try:
        stdout, stderr = process.communicate(stdin_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise CommandFailed(f"{Path(argv[0]).name} timed out after {timeout:.0f}s") from None
    except BaseException:  # cancelled (KeyboardInterrupt, Dagster termination): leave nothing
        kill_group(process)
        raise
    result = CommandResult(tuple(argv), process.returncode, stdout, stderr)
    if process.returncode not in ok_codes:
        raise CommandFailed(f"{Path(argv[0]).name} exited with {process.returncode}: {error_summary(stderr)}")
    return result


class Streaming:
    """A running program whose output (or input) the caller streams: see `streaming`."""

    def __init__(
        self, args: Sequence[str | Path], env: Mapping[str, str] | None, feed_stdin: bool, collect_stdout: bool
    ):
        self.name = Path(str(args[0])).name
        self.process = subprocess.Popen(
            [str(a) for a in args],
            stdin=subprocess.PIPE if feed_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(env),
            start_new_session=True,
        )
        self._stdout, self._stderr = output_pipes(self.process)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=50)
        self._collected: list[bytes] = []
        self._threads = [threading.Thread(target=self._drain_stderr, daemon=True)]
        if collect_stdout:
            self._threads.append(threading.Thread(target=self._collect_stdout, daemon=True))
        for thread in self._threads:
            thread.start()

    @property
    def stdin(self) -> IO[bytes]:
        """Write the program's input here (with `feed_stdin`)."""
        if self.process.stdin is None:
            raise CommandFailed(f"{self.name} was started without feed_stdin")
        return self.process.stdin

    @property
    def stdout_fd(self) -> int:
        """Read the program's output from here (not when it is collected)."""
        return self._stdout.fileno()

    @property
    def collected_stdout(self) -> bytes:
        """Everything the program wrote, once `wait` returned (with `collect_stdout`)."""
        return b"".join(self._collected)

    def wait(self, timeout: float | None = None) -> int:
        returncode = self.process.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=30)
        return returncode

    def failure(self, returncode: int) -> str:
        """`pg_dump exited with 1: <its error line and detail>` (or `was killed by signal 9`)."""
        how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with {returncode}"
        return f"{self.name} {how}: {error_summary(chr(10).join(self.stderr_tail))}"

    def _drain_stderr(self) -> None:
        try:
            for line in iter(self._stderr.readline, b""):
                text = line.decode("utf-8", "replace").strip()
                if text:
                    self.stderr_tail.append(text)
        except (ValueError, OSError):
            pass  # the pipe was closed under us: the program is being stopped (a failure already reported)

    def _collect_stdout(self) -> None:
        while chunk := self._stdout.read(65536):
            self._collected.append(chunk)


def output_pipes(process: subprocess.Popen) -> tuple[IO[bytes], IO[bytes]]:
    """stdout and stderr of a process started with both as PIPE."""
    if process.stdout is None or process.stderr is None:
        raise CommandFailed(f"{process.args!r} was started without its output pipes")
    return process.stdout, process.stderr


@contextlib.contextmanager
def streaming(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    feed_stdin: bool = False,
    collect_stdout: bool = False,
) -> Iterator[Streaming]:
    """Run a program whose stdout the caller reads (or whose stdin it writes) while it runs: its own
    process group, stderr drained by a thread (its last lines kept for the error message), the whole
    group killed if the block raises or is cancelled. The caller calls `wait` and judges the exit code."""
    stream = Streaming(args, env, feed_stdin, collect_stdout)
    try:
        yield stream
    except BaseException:
        kill_group(stream.process)
        raise
    finally:
        for pipe in (stream.process.stdin, stream.process.stdout, stream.process.stderr):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(OSError):
                    pipe.close()
        for thread in stream._threads:
            thread.join(timeout=10)


def become(user: str | None) -> dict:
    """Popen arguments that run the child as `user` with that user's own groups only. Without
    `group`/`extra_groups` the child would keep root's group (gid 0) and supplementary groups."""
    if not user:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": os.getgrouplist(user, entry.pw_gid)}


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


def error_summary(text: str) -> str:
    """The cause a PostgreSQL tool printed: its first `error:` line with the `detail:`/`hint:` lines
    after it ("query failed: ERROR: canceling statement due to lock timeout (detail: Query was:
    LOCK TABLE ...)"), not merely the last line; the last line when no line says error."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if _ERROR_LINE.search(line):
            details = []
            for following in lines[i + 1 :]:
                if not _DETAIL_LINE.search(following):
                    break
                details.append(_without_program(following))
            cause = _without_program(line)
            return f"{cause} ({'; '.join(details)})" if details else cause
    return lines[-1] if lines else "(no error output)"


def _without_program(line: str) -> str:
    """`pg_dump: error: query failed` -> `query failed`; `pg_dump: detail: x` -> `detail: x`."""
    line = re.sub(r"^[\w./-]+: ", "", line)
    return re.sub(r"^(error|fatal):\s*", "", line)


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
