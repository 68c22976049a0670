"""Real PostgreSQL for every test, never a mock of it.

The server is $OPS_TEST_PG_DSN when set, else one on 127.0.0.1:5432 (user postgres), else a
throwaway cluster started here (as the `postgres` OS user when we are root). Each test gets its own
database; the ERP sample is generated once per session and copied per test from a template.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from ops_pipelines.adapters.cluster import LocalCluster
from ops_pipelines.adapters.postgres import connect, with_dbname
from ops_pipelines.demo.generator import generate_erp_database
from ops_pipelines.errors import DatabaseError
from ops_pipelines_tests.webhook_receiver import WebhookReceiver

DEFAULT_SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
TEST_SCALE = 0.1  # ~3 MB: every table has rows, generation takes about a second


def _usable(dsn: str) -> bool:
    try:
        with connect(dsn, connect_timeout="3s") as conn:
            row = conn.execute(
                "SELECT rolsuper OR rolcreatedb AS ok FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            return bool(row and row["ok"])
    except DatabaseError:
        return False


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A DSN (database `postgres`) of a server where the tests may create databases."""
    explicit = os.environ.get("OPS_TEST_PG_DSN")
    if explicit:
        if not _usable(explicit):
            pytest.fail("OPS_TEST_PG_DSN does not reach a server where this role may create databases")
        yield explicit
        return
    if _usable(DEFAULT_SERVER):
        yield DEFAULT_SERVER
        return
    cluster = LocalCluster.temporary(prefix="ops_test_pg_")
    cluster.init()
    cluster.start()
    try:
        yield cluster.dsn()
    finally:
        cluster.remove()


def create_database(server_dsn: str, template: str | None = None) -> str:
    name = f"ops_test_{uuid.uuid4().hex[:12]}"
    with connect(server_dsn, autocommit=True) as conn:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(query)
    return name


def drop_database(server_dsn: str, name: str) -> None:
    with connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def empty_db(pg_server: str) -> Iterator[str]:
    """DSN of a new, empty database, dropped after the test."""
    name = create_database(pg_server)
    yield with_dbname(pg_server, name)
    drop_database(pg_server, name)


@pytest.fixture(scope="session")
def erp_template(pg_server: str) -> Iterator[str]:
    name = f"ops_test_erp_template_{uuid.uuid4().hex[:8]}"
    generate_erp_database(pg_server, name, TEST_SCALE)
    yield name
    drop_database(pg_server, name)


@pytest.fixture
def erp_db(pg_server: str, erp_template: str) -> Iterator[str]:
    """DSN of a fresh copy of the sample ERP database, dropped after the test."""
    name = create_database(pg_server, template=erp_template)
    dsn = with_dbname(pg_server, name)
    with connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")  # statistics are per database: a copy starts with none
    yield dsn
    drop_database(pg_server, name)


@pytest.fixture
def write_config(tmp_path: Path):
    """Write YAML text to a file and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A real HTTP server on localhost recording the alerts posted to it."""
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-protocol server on localhost (moto's standalone server), for the whole session."""
    import socket
    import subprocess
    import sys
    import time

    from ops_pipelines.adapters.cluster import free_port

    port = free_port()
    server = subprocess.Popen(
        [Path(sys.executable).with_name("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        server.kill()
        pytest.fail("moto_server did not start within 30 s")
    # boto3 signs requests; moto accepts any credentials.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A new, empty bucket on the S3 server."""
    import boto3

    name = f"ops-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name
