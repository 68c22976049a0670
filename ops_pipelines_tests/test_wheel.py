"""The package as users install it: a wheel, not the checkout. Built here, installed without -e into
a fresh virtualenv, and run from a folder outside the checkout, so a file the wheel lacks (the SQL)
fails here rather than at a user's first backup."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

BACKUP_FROM_THE_WHEEL = """
import json, sys
import ops_pipelines
from ops_pipelines.config import load_config
from ops_pipelines.core.backups import checks as backup_checks
from ops_pipelines.core.backups.backup import run_backup
from ops_pipelines.core.backups.catalog import list_backups
from ops_pipelines.definitions import build_definitions
from ops_pipelines.adapters.storage import LocalStorage
config = load_config(sys.argv[1])
storage = LocalStorage(config.backup_store.local_dir)
result = run_backup(config.databases[0], storage)
entry = list_backups(storage, "erp")[-1]
defs = build_definitions(config)
print(json.dumps({"package": ops_pipelines.__file__, "tables": len(result.manifest.table_counts),
                  "readable": backup_checks.readable(storage, entry).passed,
                  "assets": len(list(defs.resolve_asset_graph().get_all_asset_keys()))}))
"""


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_runs_a_real_backup(erp_db, tmp_path):
    # Built from a copy of what the Dockerfile copies: setuptools leaves build/ behind in the source folder.
    source = tmp_path / "source"
    for part in ("ops_pipelines", "sql"):
        shutil.copytree(REPO / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / part, source / part)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    wheel = next(wheels.glob("ops_pipelines-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "ops_pipelines/sql/backup_tables.sql" in names and "ops_pipelines/sql/demo/erp_schema.sql" in names
    assert sum(name.endswith(".sql") for name in names) == len(list((REPO / "sql").rglob("*.sql")))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True
    )
    # The dependencies (dagster, psycopg ...) are taken from this test's environment rather than downloaded
    # again: a path to its site-packages. Its .pth files are not read from there, so the checkout's
    # editable install stays invisible; only the wheel provides ops_pipelines.
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "ops_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    config = tmp_path / "config.yaml"
    config.write_text(
        f'backup_store: {{local_dir: {tmp_path / "store"}}}\ndatabases:\n  - name: erp\n    dsn: "{erp_db}"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(
        [python, "-I", "-c", BACKUP_FROM_THE_WHEEL, str(config)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["package"].startswith(site), found  # the wheel's copy, not the checkout
    assert found["tables"] == 10 and found["readable"] and found["assets"] > 5
    # The recovery command comes with the wheel, and reads the same config.
    listing = subprocess.run(
        [venv / "bin" / "ops-pipelines", "backups", "erp"],
        cwd=elsewhere,
        env={**os.environ, "OPS_PIPELINES_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith("1 backup of erp in ") and "complete" in listing.stdout
