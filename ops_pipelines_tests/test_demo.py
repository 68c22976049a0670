"""The README's demo command, end to end: cluster, sample database, instance in PostgreSQL,
every asset materialized, then (here) no UI. A second run reuses everything."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import dagster as dg
import pytest

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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "OPS_PIPELINES"))}
    return subprocess.run(
        [REPO / "scripts" / "demo.sh", "--no-ui"],
        env={**env, "OPS_DEMO_DIR": str(demo_dir)},
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

        second = run_demo(demo_dir)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert "reused:" in second.stdout
        assert json.loads((demo_dir / "cluster.json").read_text())["port"] == port
        records = instance.fetch_materializations(dg.AssetKey("table_stats"), limit=10).records
        assert len(records) == 2
