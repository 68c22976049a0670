"""A throwaway PostgreSQL cluster in a directory of our own: initdb, start, stop, remove.

Used by the demo, by the test harness when no server is reachable, and by restore sandboxes.
PostgreSQL refuses to run as root, so when we are root the server runs as the `postgres` OS user,
with that user's own groups (never root's group). By default it listens on 127.0.0.1 only, on a free
port, with trust auth. A private cluster (`socket_dir` + `password`, what restore sandboxes use)
listens on no TCP port at all: only on a Unix socket in a 0700 directory of the server user, with
scram-sha-256 and a random password, so no other local user can reach it.
"""

import hashlib
import os
import pwd
import shutil
import socket
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from psycopg.conninfo import make_conninfo

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.programs.pg_server import PgServer
from ops_pipelines.errors import ClusterError, CommandFailed

SERVER_USER = "postgres"  # the OS user that runs the server when we are root
SUPERUSER = "postgres"  # the database superuser initdb creates
_SETTINGS_FILE = "ops_pipelines.conf"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_os_user() -> str | None:
    """`postgres` when we are root (the server would refuse to start), else None: ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise ClusterError(
            f"running as root and there is no '{SERVER_USER}' OS user to run PostgreSQL as: "
            "install the server package (apt-get install postgresql) or run as a normal user"
        ) from None
    return SERVER_USER


@dataclass
class LocalCluster:
    data_dir: Path
    port: int
    bin_dir: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)
    remove_parent: bool = False  # set by temporary(): the parent directory is ours too
    # pg_hba.conf lines replacing initdb's (default: trust for local TCP connections)
    hba: list[str] | None = None
    # Unix socket only, in this directory (0700, the server user's): no TCP port is opened.
    socket_dir: Path | None = None
    # The superuser's password, with scram-sha-256 for every connection (default: trust).
    password: str | None = None
    # Copy a cached, freshly initdb'd cluster instead of running initdb (what restore sandboxes do:
    # initdb is most of a sandbox's start-up). Only with `password` and `socket_dir`.
    from_template: bool = False

    @classmethod
    def temporary(cls, prefix: str = "ops_pg_", **kwargs) -> "LocalCluster":
        """A cluster in a new temporary directory that the server user can reach."""
        parent = Path(tempfile.mkdtemp(prefix=prefix))
        user = server_os_user()
        if user:
            shutil.chown(parent, user, user)
        return cls(data_dir=parent / "data", port=free_port(), remove_parent=True, **kwargs)

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def dsn(self, dbname: str = "postgres") -> str:
        host = str(self.socket_dir) if self.socket_dir else "127.0.0.1"
        return make_conninfo(host=host, port=self.port, user=SUPERUSER, password=self.password, dbname=dbname)

    @property
    def programs(self) -> PgServer:
        return PgServer(self.bin_dir, as_user=server_os_user())

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """initdb into an empty `data_dir` (created, and owned by the server user)."""
        if self.initialized():
            return
        if self.from_template and self.password is not None:
            try:
                self._init_from_template()
                return
            except (ClusterError, CommandFailed, OSError):
                # a template damaged or half-removed (a /tmp cleaner): made anew by the next restore test
                shutil.rmtree(self.data_dir, ignore_errors=True)
                shutil.rmtree(_template_dir(self.bin_dir), ignore_errors=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._check_reachable()
        self._hand_to_server_user(self.data_dir)
        auth = ["--auth=trust"]
        pwfile = self.data_dir.parent / ".pwfile"
        if self.password is not None:
            # initdb reads the password from a file: private to the server user, deleted at once.
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(self.password + "\n")
            self._hand_to_server_user(pwfile)
            auth = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        try:
            self.programs.initdb(self.data_dir, superuser=SUPERUSER, auth=auth)
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as handle:
            handle.write(f"\ninclude_if_exists = '{_SETTINGS_FILE}'\n")
        if self.hba is not None:
            (self.data_dir / "pg_hba.conf").write_text("\n".join(self.hba) + "\n", encoding="utf-8")

    def _init_from_template(self) -> None:
        """A copy of the cached template (initdb'd once per server version, trust auth, never started),
        then this cluster's own password set in single-user mode before it first listens, and
        pg_hba.conf allowing nothing but scram-sha-256."""
        template = _template(self.bin_dir)
        self._check_reachable()
        if self.data_dir.exists():
            self.data_dir.rmdir()  # cp makes it; an empty one in the way would receive the copy inside
        commands.run(["cp", "-a", "--reflink=auto", template, self.data_dir], timeout=120)
        if not self.initialized():
            raise ClusterError(f"the cluster template {template} is incomplete")
        self.programs.single_user(self.data_dir, f"ALTER ROLE {SUPERUSER} PASSWORD '{self.password}';")
        hba = self.hba if self.hba is not None else ["local all all scram-sha-256"]
        (self.data_dir / "pg_hba.conf").write_text("\n".join(hba) + "\n", encoding="utf-8")

    def start(self, timeout: int = 60) -> None:
        if self.running():
            return
        self._write_settings()
        try:
            self.programs.start(self.data_dir, self.log_file, timeout)
        except CommandFailed as exc:
            raise ClusterError(f"PostgreSQL in {self.data_dir} did not start: {self._log_tail()} ({exc})") from None

    def running(self) -> bool:
        if not self.initialized():
            return False
        return self.programs.running(self.data_dir)

    def stop(self, timeout: int = 60) -> None:
        if not self.running():
            return
        self.programs.stop(self.data_dir, timeout)

    def remove(self) -> None:
        """Stop (if running) and delete the data directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.data_dir.parent if self.remove_parent else self.data_dir, ignore_errors=True)

    def _write_settings(self) -> None:
        if self.socket_dir:
            listen = {
                "listen_addresses": "''",
                "unix_socket_directories": f"'{self.socket_dir}'",
                "unix_socket_permissions": "0700",
            }
        else:  # TCP only: socket paths are short-limited and shared
            listen = {"listen_addresses": "'127.0.0.1'", "unix_socket_directories": "''"}
        settings = {"port": str(self.port), **listen, **self.settings}
        path = self.data_dir / _SETTINGS_FILE
        text = "".join(f"{key} = {value}\n" for key, value in settings.items())
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        self._hand_to_server_user(path)

    def _check_reachable(self) -> None:
        """As root, every parent must let the `postgres` user pass, or initdb fails obscurely."""
        user = server_os_user()
        if not user:
            return
        uid = pwd.getpwnam(user).pw_uid
        for parent in self.data_dir.resolve().parents:
            mode = parent.stat()
            if not (mode.st_mode & stat.S_IXOTH or mode.st_uid == uid):
                raise ClusterError(
                    f"the '{user}' OS user that runs PostgreSQL cannot enter {parent}: "
                    f"put the cluster elsewhere, or chmod o+x {parent}"
                )

    def _hand_to_server_user(self, path: Path) -> None:
        user = server_os_user()
        if user:
            shutil.chown(path, user, user)
        if path.is_dir():
            path.chmod(0o700)

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return "no server log"
        return lines[-1] if lines else "empty server log"


TEMPLATE_FORMAT = 1  # bump when init's options change: older templates are then made anew


def _template_dir(bin_dir: Path | None) -> Path:
    postgres = PgServer(bin_dir).postgres_path()
    key = hashlib.sha256(f"{TEMPLATE_FORMAT}:{postgres.resolve()}:{postgres.stat().st_mtime_ns}".encode())
    return Path(tempfile.gettempdir()) / f"ops_pipelines_template_{key.hexdigest()[:16]}"


def _template(bin_dir: Path | None) -> Path:
    """The cached template's data directory: made once (by initdb, trust auth, never started) in a
    root-only directory, atomically renamed into place so concurrent restore tests never see half."""
    home = _template_dir(bin_dir)
    data = home / "data"
    if (data / "PG_VERSION").exists():
        return data
    building = Path(tempfile.mkdtemp(prefix=f"{home.name}.building-", dir=home.parent))
    try:
        user = server_os_user()
        if user:
            shutil.chown(building, user, user)  # initdb runs as the server user; the parent stays root-only
        LocalCluster(data_dir=building / "data", port=0).init()
        building.chmod(0o700)
        if user:
            shutil.chown(building, os.getuid(), os.getgid())
        try:
            building.rename(home)
        except OSError:  # another process made it first: use theirs
            pass
    finally:
        shutil.rmtree(building, ignore_errors=True)
    if not (data / "PG_VERSION").exists():
        raise ClusterError(f"could not make the cluster template in {home}")
    return data
