"""Restore into a `postgres:<major>` container started through the Docker SDK, removed afterwards.

pg_restore runs on this host against the container's published port (127.0.0.1 only). The port is
reachable by every local user, so the server takes scram-sha-256 with a random password that only
this process knows (never trust)."""

import contextlib
import secrets
import time
from collections.abc import Iterator

from psycopg.conninfo import make_conninfo

from ops_pipelines.adapters.cluster import free_port
from ops_pipelines.adapters.postgres import connect
from ops_pipelines.adapters.sandbox.base import RestoreSandbox, RestoreTarget, SandboxError

READY_SECONDS = 120


class DockerSandbox(RestoreSandbox):
    kind = "docker"

    def __init__(self, image: str | None = None) -> None:
        self.image = image

    @contextlib.contextmanager
    def open(self, min_major: int) -> Iterator[RestoreTarget]:
        import docker
        from docker.errors import DockerException

        image = self.image or f"postgres:{min_major}"
        try:
            client = docker.from_env()
            client.ping()
        except DockerException as exc:
            raise SandboxError(f"no Docker engine reachable for the docker sandbox: {exc}") from None
        port = free_port()
        password = secrets.token_urlsafe(24)
        try:
            container = client.containers.run(
                image,
                detach=True,
                environment={
                    "POSTGRES_PASSWORD": password,
                    "POSTGRES_HOST_AUTH_METHOD": "scram-sha-256",
                    "POSTGRES_INITDB_ARGS": "--auth-host=scram-sha-256 --auth-local=scram-sha-256",
                },
                ports={"5432/tcp": ("127.0.0.1", port)},
                labels={"ops_pipelines": "restore_sandbox"},
                command=["postgres", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            )
        except DockerException as exc:
            raise SandboxError(f"could not start {image}: {exc}") from None
        try:
            _wait_ready(container, port)
            server = make_conninfo(host="127.0.0.1", port=port, user="postgres", password=password)
            with connect(make_conninfo(server, dbname="postgres"), autocommit=True, purpose="restore_test") as conn:
                conn.execute("CREATE DATABASE restore_target")
            yield RestoreTarget(make_conninfo(server, dbname="restore_target"), None, f"docker {image} on port {port}")
        finally:
            with contextlib.suppress(DockerException):
                container.remove(force=True, v=True)


def _wait_ready(container, port: int) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        exit_code, _ = container.exec_run(["pg_isready", "-h", "127.0.0.1", "-U", "postgres"])
        if exit_code == 0:
            return
        time.sleep(0.5)
    raise SandboxError(f"container {container.short_id} was not ready within {READY_SECONDS}s")
