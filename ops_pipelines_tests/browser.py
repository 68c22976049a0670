"""Open a local HTML file in headless Chromium and say what happened, through the DevTools
protocol: images loaded or broken, console errors, uncaught exceptions, and any request for
something other than the file itself or its data: URIs (a self-contained report makes none)."""

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect


@dataclass
class PageLoad:
    title: str = ""
    images: int = 0
    broken_images: list[str] = field(default_factory=list)  # alt texts
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    requests_outside_the_file: list[str] = field(default_factory=list)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


def load_page(chromium: str, page: Path, workdir: Path, timeout: float = 60) -> PageLoad:
    process, socket_url = start_chromium(chromium, workdir, timeout)
    try:
        with connect(socket_url, max_size=None, open_timeout=timeout) as socket:
            return _inspect(_Session(socket, timeout), page.resolve().as_uri())
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# Shown by the Dagster UI while a panel still loads: a page is open when none of these is left.
STILL_LOADING = ("Loading...", "Refreshing data")


class AppPage:
    """One tab of headless Chromium on a web app (the Dagster UI): open a URL and wait until it
    shows what it is for, read its text, take a screenshot."""

    def __init__(self, session: "_Session"):
        self.session = session

    def open(self, url: str, marker: str, timeout: float = 60) -> float:
        """Seconds from navigation until the page's text holds `marker` and no panel is loading."""
        started = time.perf_counter()
        self.session.call("Page.navigate", {"url": url})
        loading = " || ".join(f"text.includes({json.dumps(t)})" for t in STILL_LOADING)
        expression = (
            f"(() => {{ const text = document.body ? document.body.innerText : ''; "
            f"return text.includes({json.dumps(marker)}) && !({loading}); }})()"
        )
        while time.perf_counter() - started < timeout:
            if self.session.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get(
                "value"
            ):
                return time.perf_counter() - started
            time.sleep(0.05)
        raise TimeoutError(f"{url} did not show {marker!r} within {timeout:.0f} s; it shows: {self.text()[:500]!r}")

    def text(self) -> str:
        result = self.session.call(
            "Runtime.evaluate", {"expression": "document.body ? document.body.innerText : ''", "returnByValue": True}
        )
        return result["result"].get("value") or ""

    def screenshot(self) -> bytes:
        return base64.b64decode(self.session.call("Page.captureScreenshot", {"format": "png"})["data"])


@contextlib.contextmanager
def browse(chromium: str, workdir: Path, timeout: float = 120, window: str = "1600,1000") -> Iterator[AppPage]:
    process, socket_url = start_chromium(chromium, workdir, extra_args=(f"--window-size={window}",))
    try:
        with connect(socket_url, max_size=None, open_timeout=60) as socket:
            session = _Session(socket, timeout)
            session.call("Page.enable")
            yield AppPage(session)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def start_chromium(
    chromium: str, workdir: Path, timeout: float = 60, extra_args: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, str]:
    """Headless Chromium with a blank page; returns the process (its own session: kill its group)
    and the DevTools WebSocket URL of the page."""
    profile = workdir / "chromium-profile"
    process = subprocess.Popen(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            *extra_args,
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port = _devtools_port(profile, process, timeout)
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        return process, next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        raise


class _Session:
    def __init__(self, socket, timeout: float):
        self.socket, self.timeout, self.events, self._id = socket, timeout, [], 0

    def call(self, method: str, params: dict | None = None) -> dict:
        self._id += 1
        self.socket.send(json.dumps({"id": self._id, "method": method, "params": params or {}}))
        while True:
            message = self._receive()
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str) -> None:
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._receive())

    def _receive(self) -> dict:
        return json.loads(self.socket.recv(timeout=self.timeout))


def _inspect(session: _Session, url: str) -> PageLoad:
    for domain in ("Page", "Runtime", "Log", "Network"):
        session.call(f"{domain}.enable")
    session.call("Page.navigate", {"url": url})
    session.wait_for("Page.loadEventFired")
    expression = (
        "JSON.stringify({title: document.title, images: Array.from(document.images).map("
        "i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0}))})"
    )
    state = json.loads(
        session.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"]["value"]
    )
    result = PageLoad(
        title=state["title"],
        images=len(state["images"]),
        broken_images=[i["alt"] for i in state["images"] if not i["ok"]],
    )
    for event in session.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            result.console_errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in params.get("args", []))
            )
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            result.console_errors.append(params["entry"]["text"])
        elif method == "Runtime.exceptionThrown":
            result.exceptions.append(params["exceptionDetails"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            requested = params["request"]["url"]
            if requested != url and not requested.startswith("data:"):
                result.requests_outside_the_file.append(requested)
    return result


def _devtools_port(profile: Path, process: subprocess.Popen, timeout: float) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists() and (text := marker.read_text().strip()):
            return int(text.splitlines()[0])
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode} before opening its DevTools port")
        time.sleep(0.1)
    raise TimeoutError(f"chromium did not open its DevTools port within {timeout:.0f} s")
