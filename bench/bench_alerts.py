"""An alert-sensor tick with 500 pending alerts, on each channel, against the sensor timeout (60 s).

Target (issue 19): a tick with 500 alerts due stays under the sensor timeout, whether they go out
one by one or as a digest, and when the receiver is down. Receivers are real servers on localhost:
an HTTP server for the webhook and aiosmtpd for e-mail. The 500 alerts wait in the cursor as a
tick finds them after an outage; the baseline is the same tick with one alert.

    .venv/bin/python bench/bench_alerts.py [--alerts 500]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ops_pipelines.adapters.cluster import free_port  # noqa: E402
from ops_pipelines.adapters.notify import Alert  # noqa: E402
from ops_pipelines.config import parse_config  # noqa: E402
from ops_pipelines.definitions import build_definitions  # noqa: E402
from ops_pipelines_tests.test_email import SmtpServer  # noqa: E402
from ops_pipelines_tests.webhook_receiver import WebhookReceiver  # noqa: E402


def pending(count: int) -> list[dict]:
    return [
        Alert(
            kind="check_failure",
            cause=f"sessions blocked: pid {1000 + i} waits 6 min on a lock",
            run_id="",
            occurred_at="2026-11-23T10:00:00+07:00",
            database=f"erp_{i:03}",
            asset="health",
            check="blocked_sessions",
        ).to_dict()
        for i in range(count)
    ]


def tick(config_text: str, key: str, count: int) -> tuple[float, str]:
    config = parse_config(config_text, {})
    defs = build_definitions(config)
    sensor = defs.resolve_sensor_def("run_failure_alert_sensor")
    cursor = json.dumps({"after": 0, key: pending(count)})
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), definitions=defs, cursor=cursor) as context:
        started = time.perf_counter()
        result = sensor.evaluate_tick(context)
        return time.perf_counter() - started, (result.skip_message or "")[:80]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=500)
    args = parser.parse_args()
    base = "timezone: UTC\nbackup_store: {local_dir: /tmp/ops_bench_alerts}\ndatabases: [{name: erp, dsn: 'host=x'}]\n"
    webhook, smtp = WebhookReceiver(), SmtpServer()
    smtp.start()
    down = f"http://127.0.0.1:{free_port()}/hook"
    mail = f"email: {{host: 127.0.0.1, port: {smtp.port}, sender: ops@example.com, security: none}}\n"
    rows = []
    try:
        for label, top, key in (
            ("webhook, one post each", f"alerts: {{webhook_url: '{webhook.url}', digest_after: 100000}}\n", "pending"),
            ("webhook, as a digest (default)", f"alerts: {{webhook_url: '{webhook.url}'}}\n", "pending"),
            ("webhook down (3 attempts)", f"alerts: {{webhook_url: '{down}', digest_after: 100000}}\n", "pending"),
            (
                "e-mail, one mail each",
                mail + "alerts: {email_to: [dba@example.com], digest_after: 100000}\n",
                "pending_email",
            ),
            ("e-mail, as a digest (default)", mail + "alerts: {email_to: [dba@example.com]}\n", "pending_email"),
        ):
            one, _ = tick(top + base, key, 1)
            many, note = tick(top + base, key, args.alerts)
            rows.append((label, one, many, note))
    finally:
        webhook.close()
        smtp.stop()
    print(f"| channel | 1 alert (baseline) | {args.alerts} alerts | what the tick said |\n|---|---:|---:|---|")
    for label, one, many, note in rows:
        print(f"| {label} | {one:.2f} s | {many:.2f} s | {note} |")


if __name__ == "__main__":
    main()
