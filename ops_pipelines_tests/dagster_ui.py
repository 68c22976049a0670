"""The real dagster-webserver and dagster-daemon, driven as the UI drives them: start them in a
session of their own, wait until the code location is loaded, call the GraphQL API, launch a run.
Shared by the end-to-end tests, the UI test and the benchmarks."""

import json
import subprocess
import time
import urllib.request
from pathlib import Path

LOCATION = {"repositoryLocationName": "ops_pipelines", "repositoryName": "__repository__"}
LOADED_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"


def start(args: list, env: dict, cwd: Path, log: Path) -> subprocess.Popen:
    """A Dagster process in its own session (stop it, and what it started, through its group)."""
    return subprocess.Popen(
        args, env=env, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_for(what: str, probe, timeout: float, interval: float = 0.2):
    """`probe()`'s first truthy result, polled every `interval` seconds; TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def graphql(port: int, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = json.loads(response.read())
    if "errors" in body:
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def wait_until_loaded(port: int, process: subprocess.Popen | None = None, timeout: float = 180) -> None:
    """Until the webserver answers and has loaded the code location (polled every half second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the webserver exited with {process.returncode}")
        try:
            data = graphql(port, LOADED_QUERY, None, 10)
            entries = data["workspaceOrError"]["locationEntries"]
            if entries and entries[0]["loadStatus"] == "LOADED":
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the webserver on port {port} did not load the code location within {timeout:.0f} s")


def launch_run(port: int, job: str, partition: str, run_config: dict | None = None) -> str:
    """Launch one database's run of `job`, as the UI's launchpad does; returns the run id."""
    result = graphql(
        port,
        """
        mutation Launch($params: ExecutionParams!) {
          launchRun(executionParams: $params) {
            __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
          }
        }""",
        {
            "params": {
                "selector": {**LOCATION, "jobName": job},
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
                "runConfigData": run_config or {},
            }
        },
    )["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launching {job} for {partition}: {result}")
    return result["run"]["runId"]
