"""Failing checks reach a real Prometheus Alertmanager (Debian's prometheus-alertmanager, started on
a free port): present with their labels while they fail, resolved when they pass."""

import base64
import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ops_pipelines.adapters.cluster import free_port
from ops_pipelines.definitions import build_definitions
from ops_pipelines.history import PROBE_ID_PREFIX, record_check_result
from ops_pipelines_tests.dagster_ui import wait_for
from ops_pipelines_tests.helpers import SensorTicks, make_config

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def start_alertmanager(directory: Path, basic_auth: tuple[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """A real Alertmanager on a free port, data in `directory`; (process, base URL) once it is ready.
    `basic_auth`: (user, password) it requires (`--web.config.file`, the password bcrypt-hashed)."""
    assert BINARY is not None
    config = directory / "alertmanager.yml"
    config.write_text("route: {receiver: 'null'}\nreceivers: [{name: 'null'}]\n")
    port = free_port()
    web = []
    if basic_auth is not None:
        crypt = pytest.importorskip("crypt")  # the standard library's, up to Python 3.12: bcrypt via libxcrypt
        hashed = crypt.crypt(basic_auth[1], crypt.mksalt(crypt.METHOD_BLOWFISH))
        (directory / "web.yml").write_text(f"basic_auth_users:\n  {basic_auth[0]}: '{hashed}'\n")
        web = [f"--web.config.file={directory / 'web.yml'}"]
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: one instance
            *web,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # /-/ready answers 401 under basic auth: any answer means it listens
        wait_for("Alertmanager to be ready", lambda: _get(f"{url}/-/ready", any_answer=True) is not None, 30)
    except BaseException:
        process.terminate()
        raise
    return process, url


def active_alerts(url: str) -> list[dict]:
    alerts = _get(f"{url}/api/v2/alerts?active=true") or []
    return [a for a in alerts if a["status"]["state"] == "active"]


@pytest.fixture
def alertmanager(tmp_path) -> Iterator[str]:
    if BINARY is None:
        pytest.skip("Alertmanager is not installed: apt-get install prometheus-alertmanager")
    process, url = start_alertmanager(tmp_path)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _get(url: str, any_answer: bool = False, auth: tuple[str, str] | None = None):
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - a local test server
            body = response.read()
            return json.loads(body) if body.startswith((b"[", b"{")) else body
    except urllib.error.HTTPError as exc:
        return exc.code if any_answer else None
    except OSError:
        return None


def test_a_failing_check_fires_in_alertmanager_and_resolves_when_it_passes(tmp_path, alertmanager):
    top = f"alerts: {{alertmanager_url: '{alertmanager}', ui_base_url: 'http://ops.example:3000'}}\n"
    config = make_config(tmp_path, {"erp": "host=unused", "mes": "host=unused"}, top=top)
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    ticks = SensorTicks(defs, instance)

    def tick() -> str:
        return ticks.tick("alertmanager_sensor")

    def record(passed: bool) -> None:
        evaluation = dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("health"),
            check_name="prepared_xacts",
            passed=passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description="1 prepared transactions left open: 'px1' (owner erp) prepared 2 h ago",
            partition="erp",
        )
        record_check_result(instance, evaluation, f"{PROBE_ID_PREFIX}{'a' if passed else 'b'}")

    def firing() -> list[dict]:
        return active_alerts(alertmanager)

    assert tick().startswith("0 firing")
    record(False)
    assert tick().startswith("1 firing")
    [alert] = wait_for("the alert in Alertmanager", firing, 30)
    assert alert["labels"] == {"alertname": "prepared_xacts", "database": "erp", "severity": "error", "asset": "health"}
    assert "'px1'" in alert["annotations"]["summary"]
    assert tick().startswith("1 firing")  # posted again while it lasts (Alertmanager expects it)

    record(True)
    assert "1 resolved" in tick()
    wait_for("the alert to be resolved", lambda: firing() == [], 30)
    assert tick().startswith("0 firing, 0 resolved")


def test_an_alertmanager_that_is_down_keeps_the_resolution_for_the_next_tick(tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    top = f"alerts: {{alertmanager_url: '{down}', attempts: 1, timeout: 1s}}\n"
    config = make_config(tmp_path, {"erp": "host=unused"}, top=top)
    defs = build_definitions(config)
    sensor = defs.resolve_sensor_def("alertmanager_sensor")
    cursor = json.dumps({"firing": {"erp/health/reachable": {"labels": {"alertname": "reachable"}}}, "runs_after": 0})
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), definitions=defs, cursor=cursor) as context:
        result = sensor.evaluate_tick(context)
    assert "waiting" in (result.skip_message or "") and down.split("//")[1] in (result.skip_message or "")
    assert list(json.loads(result.cursor or "{}")["resolving"]) == ["erp/health/reachable"]


def test_alertmanager_behind_basic_auth_gets_the_alert(tmp_path):
    """M8: credentials in alerts.alertmanager_url go as `Authorization: Basic`, not in the host name."""
    if BINARY is None:
        pytest.skip("Alertmanager is not installed: apt-get install prometheus-alertmanager")
    user, password = "ops", "p@ss:word/1"
    process, url = start_alertmanager(tmp_path, basic_auth=(user, password))
    try:
        assert _get(f"{url}/api/v2/alerts", any_answer=True) == 401  # it does require the credentials
        quoted = urllib.parse.quote(password, safe="")
        with_credentials = url.replace("http://", f"http://{user}:{quoted}@")
        config = make_config(
            tmp_path, {"erp": "host=unused"}, top=f"alerts: {{alertmanager_url: '{with_credentials}'}}\n"
        )
        defs = build_definitions(config)
        instance = dg.DagsterInstance.ephemeral()
        evaluation = dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("health"),
            check_name="reachable",
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description="erp is unreachable",
            partition="erp",
        )
        record_check_result(instance, evaluation, f"{PROBE_ID_PREFIX}c")
        message = SensorTicks(defs, instance).tick("alertmanager_sensor")
        assert message.startswith("1 firing") and password not in message and quoted not in message
        alerts = wait_for(
            "the alert in Alertmanager",
            lambda: [a for a in (_get(f"{url}/api/v2/alerts?active=true", auth=(user, password)) or [])],
            30,
        )
        assert alerts[0]["labels"]["alertname"] == "reachable"
    finally:
        process.terminate()
        process.wait(10)
