"""The per-database recovery view as a DBA sees it: headless Chromium against the real
dagster-webserver, on an instance where a database has two backups, the newest proven restorable,
and an operator has since tested the older one. The page must still call the newest proven."""

import os
import signal
import sys
from pathlib import Path

import dagster as dg
import pytest

from ops_pipelines.adapters.cluster import free_port
from ops_pipelines.adapters.storage import LocalStorage
from ops_pipelines.config import load_config
from ops_pipelines.core.backups.catalog import list_backups
from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines_tests.browser import browse, find_chromium
from ops_pipelines_tests.dagster_ui import start, wait_until_loaded


@pytest.mark.slow
def test_the_recovery_view_of_a_database_in_the_ui(tmp_path, erp_db):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    home = tmp_path / "dagster_home"
    home.mkdir()
    # Storage: SQLite in `home` (the shipped dagster.yaml wants PostgreSQL); the UI settings as shipped.
    (home / "dagster.yaml").write_text("nux:\n  enabled: false\ntelemetry:\n  enabled: false\n")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        f"timezone: Asia/Ho_Chi_Minh\nbackup_store: {{local_dir: {tmp_path / 'store'}}}\n"
        f'databases:\n  - name: erp\n    dsn: "{erp_db}"\n'
    )
    config = load_config(config_path)
    defs = build_definitions(config)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        backup = capability_job(defs, config, "erp", "backup")
        for _ in range(2):
            run = backup.execute_in_process(
                partition_key="erp", instance=instance, asset_selection=[dg.AssetKey("backup")]
            )
            assert run.success
        older, newest = (e.stamp for e in list_backups(LocalStorage(tmp_path / "store"), "erp") if e.complete)
        restore = capability_job(defs, config, "erp", "restore_test")
        assert restore.execute_in_process(partition_key="erp", instance=instance).success  # the newest
        operator_test = {"ops": {"restore_test": {"config": {"backup": older}}}}
        assert restore.execute_in_process(partition_key="erp", instance=instance, run_config=operator_test).success
        sensor = defs.resolve_sensor_def("database_status_sensor")
        with dg.build_sensor_context(instance=instance, definitions=defs) as context:
            for event in sensor.evaluate_tick(context).asset_events:
                instance.report_runless_asset_event(event)

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "OPS_PIPELINES"))}
    webserver = start(
        [Path(sys.executable).parent / "dagster-webserver", "-m", "ops_pipelines.definitions", "-p", str(port)],
        {**env, "DAGSTER_HOME": str(home), "OPS_PIPELINES_CONFIG": str(config_path)},
        tmp_path,
        tmp_path / "webserver.log",
    )
    try:
        wait_until_loaded(port, webserver)
        with browse(chromium, tmp_path) as page:
            page.open(
                f"http://127.0.0.1:{port}/assets/database_status?view=partitions&partition=erp",
                "newest backup proven restorable",
            )
            text = page.text()
            shot = page.screenshot()
    finally:
        os.killpg(webserver.pid, signal.SIGKILL)
        webserver.wait(timeout=30)
    (tmp_path / "database_status_erp.png").write_bytes(shot)  # for a person reading a failure
    assert shot.startswith(b"\x89PNG") and len(shot) > 20_000
    # One page answers the DBA's question: the newest backup, and that it is the one proven restorable,
    # although the latest restore test was of the older backup.
    assert f"{newest} (" in text  # newest backup, with its local time and size
    assert f"{newest}, tested" in text and "(the newest)" in text
    assert "restored in" in text and "No check fails" in text
    assert "Join the Dagster community" not in text  # nux disabled: no pop-up over the answer
