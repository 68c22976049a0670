"""The README's demo command, end to end: cluster, sample database, instance in PostgreSQL,
every asset materialized, then (here) no UI. A second run, --ui-only, reuses everything, serves the
UI and stops cleanly on SIGTERM."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from ops_pipelines.adapters.cluster import free_port

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def demo_dir():
    # Not pytest's tmp_path: as root the server runs as `postgres`, which cannot enter it.
    directory = Path(tempfile.mkdtemp(prefix="ops_test_demo_"))
    directory.chmod(0o755)
    yield directory
    subprocess.run(
        [REPO / "scripts" / "demo.sh", "--stop"],
        env={**os.environ, "OPS_DEMO_DIR": str(directory)},
        capture_output=True,
        timeout=120,
    )
    shutil.rmtree(directory, ignore_errors=True)


def run_demo(demo_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [REPO / "scripts" / "demo.sh", "--no-ui"],
        env=demo_env(demo_dir),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_demo_materializes_table_stats_into_a_postgres_backed_instance(demo_dir, monkeypatch):
    first = run_demo(demo_dir)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "generated:" in first.stdout
    report = Path(first.stdout.split("The weekly report: ", 1)[1].split(" ", 1)[0])
    assert report.parent == demo_dir / "reports" and "## erp_demo" in report.with_suffix(".md").read_text()

    port = json.loads((demo_dir / "cluster.json").read_text())["port"]
    for key, value in {
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(port),
        "DAGSTER_PG_USER": "postgres",
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": "dagster",
    }.items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.from_config(str(demo_dir / "dagster_home")) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        event = instance.get_latest_materialization_event(dg.AssetKey("table_stats"))
        assert event is not None
        assert event.asset_materialization.metadata["tables"].value >= 10  # + archive tables once archival ran

        archived = instance.get_latest_materialization_event(dg.AssetKey("archive_completed_orders"))
        assert archived is not None and archived.asset_materialization.metadata["rows_moved"].value > 0  # confirmed

        # A re-run with --ui-only: the UI on what is there in seconds, nothing materialized again;
        # SIGTERM (as Ctrl-C) stops it and every process it started.
        ui_port = free_port()
        second = subprocess.Popen(
            [REPO / "scripts" / "demo.sh", "--ui-only", "--port", str(ui_port)],
            env={**demo_env(demo_dir)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until_serving(ui_port, second)
        finally:
            second.send_signal(signal.SIGTERM)
            output = second.communicate(timeout=60)[0]
        assert second.returncode == 0, output[-3000:]
        assert "reused:" in output and "--ui-only: showing what was materialized at" in output
        assert "stopped (the demo cluster keeps running" in output
        assert dagster_processes_of(demo_dir) == []  # webserver, daemon, code servers: all gone
        assert json.loads((demo_dir / "cluster.json").read_text())["port"] == port
        records = instance.fetch_materializations(dg.AssetKey("table_stats"), limit=10).records
        assert len(records) == 1


def demo_env(demo_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "OPS_PIPELINES"))}
    return {**env, "OPS_DEMO_DIR": str(demo_dir)}


def wait_until_serving(port: int, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the demo exited before serving the UI"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the demo UI did not answer on port {port} within {timeout:.0f} s")


def dagster_processes_of(demo_dir: Path) -> list[str]:
    """Command lines of live Dagster processes started for this demo directory (from their environment)."""
    found = []
    marker = f"OPS_DEMO_DIR={demo_dir}".encode()
    for proc in Path("/proc").iterdir():
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if "dagster" in command and "python" in command and proc.joinpath("stat").read_text().split()[2] != "Z":
                    found.append(command)
        except (OSError, ValueError):
            continue
    return found
