"""Alerts and the weekly report by e-mail, through a real SMTP server on localhost (aiosmtpd): read
back, parts checked, and a server that is down keeps the alert waiting until it is up."""

import email
import email.policy
from collections.abc import Iterator

import dagster as dg
import pytest
from aiosmtpd.controller import Controller

from ops_pipelines.adapters.cluster import free_port
from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines_tests.helpers import make_config
from ops_pipelines_tests.test_alerts import failing_restore_run, tick


class Inbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def mail_config(tmp_path, smtp: SmtpServer, dsn: str = "host=unused", alerts: str = "", reports: str = ""):
    top = (
        f"email: {{host: 127.0.0.1, port: {smtp.port}, sender: ops@example.com, security: none, attempts: 1,"
        " timeout: 2s}\n"
        f"alerts: {{email_to: [dba@example.com], ui_base_url: 'http://ops.example:3000'{alerts}}}\n"
        f"reports: {{email_to: [boss@example.com, dba@example.com]{reports}}}\n"
    )
    return make_config(tmp_path, {"erp": dsn}, top=top)


def parts(message) -> dict[str, object]:
    return {part.get_content_type(): part for part in message.walk() if not part.is_multipart()}


def test_a_failed_run_is_mailed_as_text_and_html_with_its_link(tmp_path, smtp):
    config = mail_config(tmp_path, smtp)
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    _, cursor = tick(defs, "run_failure_alert_sensor", instance, None)
    run = failing_restore_run(defs, config, instance)
    message, _ = tick(defs, "run_failure_alert_sensor", instance, cursor)
    assert message.startswith("1 alerts mailed"), message
    [mail] = smtp.inbox.messages
    assert smtp.inbox.recipients == [["dba@example.com"]] and mail["From"] == "ops@example.com"
    assert str(mail["Subject"]).strip().startswith("[ops_pipelines] FAILED erp/restore_test: run failed: ")
    assert "no backup 20990101T000000Z of erp" in mail["Subject"]
    found = parts(mail)
    link = f"http://ops.example:3000/runs/{run.run_id}"
    assert link in found["text/plain"].get_content()
    assert f'<a href="{link}">' in found["text/html"].get_content()


def test_an_alert_waits_while_the_smtp_server_is_down_then_arrives(tmp_path):
    smtp = SmtpServer()  # not started: nothing listens on its port
    config = mail_config(tmp_path, smtp)
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    _, cursor = tick(defs, "run_failure_alert_sensor", instance, None)
    failing_restore_run(defs, config, instance)
    message, cursor = tick(defs, "run_failure_alert_sensor", instance, cursor)
    assert message.startswith("0 alerts mailed, 0 refused, 1 waiting: SMTP server 127.0.0.1:"), message
    assert "ops@example.com" not in cursor  # the cursor holds the alert, not the mail settings
    smtp.start()
    try:
        message, _ = tick(defs, "run_failure_alert_sensor", instance, cursor)
        assert message.startswith("1 alerts mailed, 0 refused, 0 waiting"), message
        assert len(smtp.inbox.messages) == 1
    finally:
        smtp.stop()


def test_the_weekly_report_is_mailed_with_inline_charts_and_its_text_twin(tmp_path, smtp, erp_db):
    config = mail_config(tmp_path, smtp, dsn=erp_db)
    defs = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    assert capability_job(defs, config, "erp", "backup").execute_in_process(partition_key="erp", instance=instance)
    report_job = defs.resolve_job_def("maintenance_report_job")
    result = report_job.execute_in_process(instance=instance)
    [delivered] = result.get_asset_check_evaluations()
    assert delivered.check_name == "report_delivered" and delivered.passed, delivered.description
    [mail] = smtp.inbox.messages
    assert smtp.inbox.recipients == [["boss@example.com", "dba@example.com"]]
    assert str(mail["Subject"]).strip().startswith("[ops_pipelines] Maintenance report ")
    found = parts(mail)
    assert found["text/plain"].get_content().startswith("# Weekly maintenance report")  # the Markdown twin
    html = found["text/html"].get_content()
    assert 'src="cid:backup_trend_erp.png"' in html and "data:image" not in html
    image = found["image/png"]
    assert image["Content-ID"] == "<backup_trend_erp.png>" and image.get_content()[:8] == b"\x89PNG\r\n\x1a\n"

    smtp.stop()  # a failed delivery: a warning, and the files are there
    result = report_job.execute_in_process(instance=instance)
    [delivered] = result.get_asset_check_evaluations()
    assert not delivered.passed and delivered.severity == dg.AssetCheckSeverity.WARN
    assert "not mailed (the files are written): SMTP server 127.0.0.1:" in (delivered.description or "")
    assert list((tmp_path / "reports").glob("maintenance_report_*.html"))


@pytest.mark.parametrize("case", ["no STARTTLS", "no login offered"])
def test_settings_the_server_cannot_meet_are_permanent_and_say_so(smtp, case):
    """m5: a server without STARTTLS (or without AUTH) was "unreachable after 3 attempts" and retried."""
    import email.message

    from ops_pipelines.adapters.mail import MailUndelivered, send
    from ops_pipelines.config import Email

    fields = {"host": "127.0.0.1", "port": smtp.port, "sender": "ops@example.com", "attempts": 3, "timeout": "2s"}
    if case == "no STARTTLS":
        settings = Email.model_validate({**fields, "security": "starttls"})
    else:
        settings = Email.model_validate({**fields, "security": "none", "username": "ops", "password": "wrong"})
    message = email.message.EmailMessage()
    message["To"] = "dba@example.com"
    message["Subject"] = "test"
    message.set_content("test")
    slept: list[float] = []
    with pytest.raises(MailUndelivered) as info:
        send(settings, message, sleep=slept.append)
    assert info.value.permanent and slept == []  # said once, not retried
    expected = "does not offer STARTTLS" if case == "no STARTTLS" else "does not offer a login (AUTH)"
    assert expected in str(info.value) and "wrong" not in str(info.value)
