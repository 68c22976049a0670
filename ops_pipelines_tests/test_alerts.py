"""Webhook alerts, received by a real HTTP server on localhost, from real failed runs and checks."""

import json

import dagster as dg
import pytest

from ops_pipelines.adapters.cluster import free_port
from ops_pipelines.adapters.notify import Alert, AlertUndelivered, payload, post
from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines_tests.helpers import make_config

ALERT = Alert(
    kind="run_failure",
    cause="pg_dump exited 1: <no space>",
    run_id="0123456789abcdef",
    occurred_at="2026-11-22T02:00:05+07:00",
    database="erp",
    asset="backup",
    job="backup_job",
    run_url="http://dagster.example:3000/runs/0123456789abcdef",
)


def alerting_config(tmp_path, dsn: str, webhook, fmt: str = "generic", extra: str = "", **alerts) -> object:
    settings = {
        "webhook_url": webhook.url,
        "format": fmt,
        "ui_base_url": "http://dagster.example:3000/",
        "attempts": 2,
        **alerts,
    }
    top = "alerts:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in settings.items())
    return make_config(tmp_path, {"erp": dsn}, extra=extra, top=top)


def tick(defs: dg.Definitions, name: str, instance: dg.DagsterInstance, cursor: str | None) -> tuple[str, str]:
    """Evaluate a sensor once, as the daemon does; returns (skip message, new cursor)."""
    sensor = defs.resolve_sensor_def(name)
    with dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor) as context:
        result = sensor.evaluate_tick(context)
    return result.skip_message, result.cursor


def failing_restore_run(defs, config, instance) -> dg.ExecuteInProcessResult:
    """A run that fails at once and for good (not a transient failure Dagster would retry)."""
    job = capability_job(defs, config, "erp", "restore_test")
    run_config = {"ops": {"restore_test": {"config": {"backup": "20990101T000000Z"}}}}
    result = job.execute_in_process(partition_key="erp", instance=instance, run_config=run_config, raise_on_error=False)
    assert not result.success
    return result


# ---------------------------------------------------------------------------- posting


def test_post_retries_a_failing_receiver_with_backoff_then_delivers(webhook):
    webhook.answers = [503, 502]
    waits = []
    post(webhook.url, {"n": 1}, attempts=3, timeout=5, sleep=waits.append)
    assert webhook.posts == [{"n": 1}]
    assert waits == [1.0, 2.0]  # exponential backoff between attempts


def test_post_gives_up_without_echoing_the_secret_url(webhook):
    webhook.answers = [500, 500]
    with pytest.raises(AlertUndelivered) as failure:
        post(webhook.url, {"n": 1}, attempts=2, timeout=5, sleep=lambda s: None)
    assert not failure.value.permanent and "HTTP 500" in str(failure.value)
    assert "secret-token" not in str(failure.value) and f"127.0.0.1:{webhook.server.server_port}" in str(failure.value)

    webhook.answers = [404]
    with pytest.raises(AlertUndelivered) as refused:
        post(webhook.url, {"n": 1}, attempts=3, timeout=5, sleep=lambda s: None)
    assert refused.value.permanent  # retrying a 4xx cannot help

    with pytest.raises(AlertUndelivered) as unusable:  # urllib's own message would quote the path
        post(f"http://127.0.0.1:{webhook.server.server_port}/services/secret token", {"n": 1}, attempts=3, timeout=5)
    assert unusable.value.permanent and "secret" not in str(unusable.value)

    closed = f"http://127.0.0.1:{free_port()}/hook"
    with pytest.raises(AlertUndelivered, match="unreachable after 2 attempts"):
        post(closed, {"n": 1}, attempts=2, timeout=2, sleep=lambda s: None)


def test_slack_payload_has_text_and_blocks_with_escaped_cause_and_run_link():
    body = payload(ALERT, "slack")
    assert body["text"] == "erp/backup: run failed: pg_dump exited 1: <no space>"
    section = body["blocks"][0]["text"]["text"]
    assert "&lt;no space&gt;" in section and "*erp/backup: run failed*" in section
    context = body["blocks"][1]["elements"][0]["text"]
    assert "database *erp*" in context and "<http://dagster.example:3000/runs/0123456789abcdef|run 01234567>" in context


def test_generic_payload_carries_every_field():
    body = payload(ALERT, "generic")
    assert body["title"] == "erp/backup: run failed"
    assert {k: body[k] for k in ("kind", "database", "asset", "cause", "run_id", "run_url", "job", "severity")} == {
        "kind": "run_failure",
        "database": "erp",
        "asset": "backup",
        "cause": "pg_dump exited 1: <no space>",
        "run_id": "0123456789abcdef",
        "run_url": "http://dagster.example:3000/runs/0123456789abcdef",
        "job": "backup_job",
        "severity": "error",
    }


# ---------------------------------------------------------------------------- sensors


def test_one_post_per_failed_run_with_database_asset_cause_and_link(tmp_path, empty_db, webhook):
    config = alerting_config(tmp_path, empty_db, webhook)
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    failing_restore_run(defs, config, instance)  # before alerts were on: not replayed
    message, cursor = tick(defs, "run_failure_alert_sensor", instance, None)
    assert "started" in message and webhook.posts == []

    runs = [failing_restore_run(defs, config, instance).run_id for _ in range(2)]
    message, cursor = tick(defs, "run_failure_alert_sensor", instance, cursor)
    assert message.startswith("2 alerts posted")
    assert [p["run_id"] for p in webhook.posts] == runs
    first = webhook.posts[0]
    assert (first["kind"], first["database"], first["asset"], first["job"]) == (
        "run_failure",
        "erp",
        "restore_test",
        "restore_test_job",
    )
    assert "no backup 20990101T000000Z of erp" in first["cause"]
    assert first["run_url"] == f"http://dagster.example:3000/runs/{runs[0]}"
    assert first["occurred_at"].endswith("+07:00")  # the configured zone

    tick(defs, "run_failure_alert_sensor", instance, cursor)
    assert len(webhook.posts) == 2  # exactly once: a later tick posts nothing again


def test_alerts_wait_in_the_cursor_while_the_receiver_is_down(tmp_path, empty_db, webhook):
    config = alerting_config(tmp_path, empty_db, webhook, fmt="slack")
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    _, cursor = tick(defs, "run_failure_alert_sensor", instance, None)
    run_id = failing_restore_run(defs, config, instance).run_id

    webhook.answers = [503, 503]  # both attempts of this tick fail
    message, cursor = tick(defs, "run_failure_alert_sensor", instance, cursor)
    assert "0 alerts posted" in message and "1 waiting" in message and "HTTP 503" in message
    assert webhook.posts == [] and json.loads(cursor)["pending"][0]["run_id"] == run_id
    assert "secret-token" not in cursor and "secret-token" not in message

    message, cursor = tick(defs, "run_failure_alert_sensor", instance, cursor)
    assert message.startswith("1 alerts posted") and json.loads(cursor)["pending"] == []
    assert len(webhook.posts) == 1 and run_id[:8] in webhook.posts[0]["blocks"][1]["elements"][0]["text"]


def test_a_failing_check_posts_once_and_warnings_follow_check_severity(tmp_path, empty_db, webhook):
    # xid_age errors past 2 and warns past 1: any database is older than that.
    config = alerting_config(tmp_path, empty_db, webhook, extra="vacuum: {xid_age_warn: 1, xid_age_error: 2}")
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    _, cursor = tick(defs, "check_failure_alert_sensor", instance, None)
    results = [
        capability_job(defs, config, "erp", "vacuum").execute_in_process(partition_key="erp", instance=instance)
        for _ in range(2)
    ]
    assert all(r.success for r in results)  # a failed non-blocking check does not fail the run: only this sensor tells

    message, cursor = tick(defs, "check_failure_alert_sensor", instance, cursor)
    assert message.startswith("1 alerts posted")  # the same failure twice: alerted once, at its start
    alert = webhook.posts[0]
    assert (alert["kind"], alert["database"], alert["asset"], alert["check"], alert["severity"]) == (
        "check_failure",
        "erp",
        "vacuum_analyze",
        "xid_age",
        "error",
    )
    assert "transaction" in alert["cause"].lower()
    assert [p["run_url"].rsplit("/", 1)[1] for p in webhook.posts] == [results[0].run_id]
    tick(defs, "check_failure_alert_sensor", instance, cursor)
    assert len(webhook.posts) == 1

    warn_only = alerting_config(
        tmp_path,
        empty_db,
        webhook,
        check_severity="error",
        extra="vacuum: {xid_age_warn: 1, xid_age_error: 2000000000}",
    )
    defs = build_definitions(warn_only)
    capability_job(defs, warn_only, "erp", "vacuum").execute_in_process(partition_key="erp", instance=instance)
    message, _ = tick(defs, "check_failure_alert_sensor", instance, cursor)
    assert message.startswith("0 alerts posted") and len(webhook.posts) == 1


def test_no_alert_sensors_without_a_webhook(tmp_path):
    defs = build_definitions(make_config(tmp_path, {"erp": "host=127.0.0.1 dbname=unused"}))
    names = {s.name for s in defs.sensors}
    assert "run_failure_alert_sensor" not in names and "check_failure_alert_sensor" not in names


def test_a_check_failing_on_one_database_names_that_database_only(tmp_path, empty_db, webhook):
    """Two databases share every check (partitions): a failure on one alerts for that one."""
    top = f"alerts: {{webhook_url: '{webhook.url}', format: generic}}\n"
    config = make_config(tmp_path, {"erp": empty_db, "mes": empty_db}, top=top)
    config = config.model_copy(
        update={
            "databases": [
                config.databases[0],
                config.databases[1].model_copy(
                    update={
                        "vacuum": config.databases[1].vacuum.model_copy(update={"xid_age_warn": 1, "xid_age_error": 2})
                    }
                ),
            ]
        }
    )
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    _, cursor = tick(defs, "check_failure_alert_sensor", instance, None)
    for database in ("erp", "mes"):
        capability_job(defs, config, database, "vacuum").execute_in_process(partition_key=database, instance=instance)
    message, _ = tick(defs, "check_failure_alert_sensor", instance, cursor)
    assert message.startswith("1 alerts posted"), message
    assert [(p["database"], p["check"]) for p in webhook.posts] == [("mes", "xid_age")]
    assert webhook.posts[0]["title"].startswith("mes/vacuum_analyze: check xid_age failed")


def test_a_storm_of_failing_checks_is_one_digest_and_so_is_its_resolution(tmp_path, webhook):
    """20 checks fail at once (two databases' health probe): one message listing them, not 20."""
    from ops_pipelines.history import PROBE_ID_PREFIX, record_check_result
    from ops_pipelines_tests.test_email import SmtpServer

    smtp = SmtpServer()
    smtp.start()
    top = (
        f"alerts: {{webhook_url: '{webhook.url}', format: generic, email_to: [dba@example.com]}}\n"
        f"email: {{host: 127.0.0.1, port: {smtp.port}, sender: ops@example.com, security: none}}\n"
    )
    config = make_config(tmp_path, {"erp": "host=unused", "mes": "host=unused"}, top=top)
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    _, cursor = tick(defs, "check_failure_alert_sensor", instance, None)
    checks = ["connections", "long_transactions", "blocked_sessions", "sequence_headroom", "wraparound"]
    checks += ["replication", "prepared_xacts", "cache_hit", "backup_volume", "data_volume"]

    def record_all(passed: bool, probe: str) -> None:
        for database in ("erp", "mes"):
            for check in checks:
                evaluation = dg.AssetCheckEvaluation(
                    asset_key=dg.AssetKey("health"),
                    check_name=check,
                    passed=passed,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=f"{check} on {database}: {'ok' if passed else 'broken'}",
                    partition=database,
                )
                record_check_result(instance, evaluation, f"{PROBE_ID_PREFIX}{probe}")

    record_all(False, "storm")
    message, cursor = tick(defs, "check_failure_alert_sensor", instance, cursor)
    assert message.startswith("20 alerts posted") and "; 20 alerts mailed" in message, message
    [digest] = webhook.posts
    assert digest["kind"] == "digest" and digest["title"] == "20 alerts (20 failing, 0 resolved)"
    assert {(a["database"], a["check"]) for a in digest["alerts"]} == {(d, c) for d in ("erp", "mes") for c in checks}
    assert all(a["run_url"] is None for a in digest["alerts"])  # recorded without a run: no link to one
    record_all(True, "calm")
    tick(defs, "check_failure_alert_sensor", instance, cursor)
    smtp.stop()
    assert len(webhook.posts) == 2 and webhook.posts[1]["title"] == "20 alerts (0 failing, 20 resolved)"
    # one digest per channel: the e-mail channel got two mails, not forty
    subjects = [str(m["Subject"]).strip() for m in smtp.inbox.messages]
    assert subjects == [
        "[ops_pipelines] 20 alerts (20 failing, 0 resolved)",
        "[ops_pipelines] 20 alerts (0 failing, 20 resolved)",
    ]
    assert "mes/health: check wraparound failed" in smtp.inbox.messages[0].get_body(("plain",)).get_content()
