"""Stops and deletes a sandbox cluster when the process that owns it dies, however it dies.

The owner starts this with the read end of a pipe whose write end only the owner holds. When the
owner exits — normally, by an exception, or killed with SIGKILL — the kernel closes the write end
and the read here returns end-of-file: the watchdog stops the server (immediate mode: it holds
nothing worth keeping) and removes the sandbox's directory. It runs in a session of its own, so a
signal to the owner's process group does not take it along. It runs as the owner's user, not the
server's: it is part of the owner (it listens to nothing), and the server's user may not be allowed
to run the owner's interpreter (a virtualenv under /root). The server itself runs as the server
user. When the owner cleaned up itself, the watchdog finds nothing left and exits.

    python -m ops_pipelines.adapters.sandbox.watchdog FD DATA_DIR REMOVE_DIR [BIN_DIR]
"""

import contextlib
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.cluster import server_os_user
from ops_pipelines.adapters.programs.pg_server import PgServer
from ops_pipelines.adapters.sandbox.base import SandboxError

STOP_SECONDS = 30
READY_SECONDS = 60


class Watchdog:
    """The owner's side: the write end of the pipe, and the watchdog process."""

    def __init__(self, data_dir: Path, remove_dir: Path, bin_dir: Path | None) -> None:
        read_end, self._write_end = os.pipe()  # both close-on-exec: no other child inherits them
        try:
            args = [sys.executable, "-m", __name__, str(read_end), str(data_dir), str(remove_dir)]
            self.process = subprocess.Popen(
                args + ([str(bin_dir)] if bin_dir else []),
                pass_fds=(read_end,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                env=commands.child_env({}),
            )
        except BaseException:
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)
        # No sandbox without its watchdog: wait for it to say it is watching.
        self._stdout, self._stderr = commands.output_pipes(self.process)
        ready, _, _ = select.select([self._stdout], [], [], READY_SECONDS)
        if not ready:
            self.release()
            raise SandboxError(f"the sandbox watchdog did not start within {READY_SECONDS}s")
        if self._stdout.readline() != b"watching\n":  # it exited: say why
            error = commands.error_summary(self._stderr.read().decode("utf-8", "replace"))
            self.release()
            raise SandboxError(f"the sandbox watchdog could not start: {error}")

    def release(self) -> None:
        """The owner cleaned up: let the watchdog go (it finds nothing to do) and reap it."""
        with contextlib.suppress(OSError):
            os.close(self._write_end)
        try:
            self.process.wait(timeout=STOP_SECONDS + 10)
        except subprocess.TimeoutExpired:
            commands.kill_group(self.process)
        self._stdout.close()
        self._stderr.close()


def watch(read_fd: int, data_dir: Path, remove_dir: Path, bin_dir: Path | None) -> None:
    print("watching", flush=True)
    while os.read(read_fd, 1):  # nothing is ever written: this returns b"" when the owner is gone
        pass
    if (data_dir / "postmaster.pid").exists():
        with contextlib.suppress(Exception):  # nobody is left to tell: do what can be done
            PgServer(bin_dir, as_user=server_os_user()).stop(data_dir, STOP_SECONDS, mode="immediate")
    shutil.rmtree(remove_dir, ignore_errors=True)


if __name__ == "__main__":
    fd, data, remove = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    watch(fd, data, remove, Path(sys.argv[4]) if len(sys.argv) > 4 else None)
