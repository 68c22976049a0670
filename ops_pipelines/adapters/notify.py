"""Alert messages: webhook JSON (Slack-compatible or generic, POSTed with retries and backoff) and
e-mail (text + HTML, sent by adapters/mail.py).

The webhook URL is a secret (a Slack URL carries its token), so no message here contains it: errors
name the host only.
"""

import base64
import html
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from email.message import EmailMessage
from typing import Literal

from ops_pipelines.errors import OpsError

BACKOFF_SECONDS = 1.0  # before the second attempt; doubled for each next one
MAX_RETRY_AFTER_SECONDS = 10.0  # a receiver's Retry-After is honoured up to this

AlertFormat = Literal["slack", "generic"]


class AlertUndelivered(OpsError):
    """The receiver did not take the alert; `permanent` when retrying cannot help (a 4xx answer)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Alert:
    kind: Literal["run_failure", "check_failure", "check_resolved"]
    cause: str  # one line
    run_id: str
    occurred_at: str  # ISO 8601, in the configured time zone
    database: str | None = None
    asset: str | None = None  # `erp_prod/backup`
    check: str | None = None
    job: str | None = None
    severity: Literal["error", "warning"] = "error"
    run_url: str | None = None

    @property
    def title(self) -> str:
        subject = self.asset or (f"job {self.job}" if self.job else f"run {self.run_id[:8]}")
        if self.database:  # `erp_prod/backup`: the database first, as a DBA scans a channel
            subject = f"{self.database}/{subject}"
        if self.kind == "check_failure":
            return f"{subject}: check {self.check} failed" + (" (warning)" if self.severity == "warning" else "")
        if self.kind == "check_resolved":
            return f"{subject}: check {self.check} resolved"
        return f"{subject}: run failed"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Alert":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def payload(alert: Alert, fmt: AlertFormat) -> dict:
    if fmt == "generic":
        return {"title": alert.title, **alert.to_dict()}
    # Slack: `text` is the notification fallback, `blocks` the formatted message.
    icon = ":large_yellow_circle:" if alert.severity == "warning" else ":red_circle:"
    if alert.kind == "check_resolved":
        icon = ":large_green_circle:"
    if alert.run_url is None and alert.kind != "run_failure" and alert.asset == "health":
        link = "health probe"  # recorded without a run
    else:
        link = f"<{alert.run_url}|run {alert.run_id[:8]}>" if alert.run_url else f"run {alert.run_id[:8]}"
    context = " · ".join(
        part
        for part in (
            f"database *{_slack_escape(alert.database)}*" if alert.database else "",
            f"job {_slack_escape(alert.job)}" if alert.job else "",
            alert.occurred_at,
            link,
        )
        if part
    )
    headline = f"{icon} *{_slack_escape(alert.title)}*"
    return {
        "text": f"{alert.title}: {alert.cause}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{headline}\n{_slack_escape(alert.cause)}"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def digest_payload(alerts: list[Alert], fmt: AlertFormat) -> dict:
    """One message for a storm: every alert's title and cause, oldest first."""
    failing = sum(1 for a in alerts if a.kind != "check_resolved")
    title = f"{len(alerts)} alerts ({failing} failing, {len(alerts) - failing} resolved)"
    lines = [f"{a.occurred_at} {a.title}: {a.cause}" for a in alerts]
    if fmt == "generic":
        return {"kind": "digest", "title": title, "alerts": [{"title": a.title, **a.to_dict()} for a in alerts]}
    shown = lines[:40] + ([f"... and {len(lines) - 40} more"] if len(lines) > 40 else [])
    return {
        "text": title,
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*{_slack_escape(title)}*\n" + _slack_escape("\n".join(shown))},
            }
        ],
    }


SUBJECT_PREFIX = "[ops_pipelines]"


def alert_mail(alert: Alert, to: list[str]) -> EmailMessage:
    """`[ops_pipelines] FAILED erp_prod/backup: <cause>`, text and HTML, with the run's link."""
    state = {"check_resolved": "RESOLVED"}.get(alert.kind, "WARNING" if alert.severity == "warning" else "FAILED")
    subject = f"{SUBJECT_PREFIX} {state} {alert.title}: {alert.cause}"
    facts = [
        ("database", alert.database),
        ("asset", alert.asset),
        ("check", alert.check),
        ("job", alert.job),
        ("severity", alert.severity if alert.kind != "check_resolved" else None),
        ("when", alert.occurred_at),
        ("run", alert.run_url),
    ]
    shown = [(label, value) for label, value in facts if value]
    text = f"{alert.title}\n\n{alert.cause}\n\n" + "\n".join(f"{label}: {value}" for label, value in shown)
    rows = "".join(
        f"<tr><th align=left>{html.escape(label)}</th><td>{_html_value(label, value)}</td></tr>"
        for label, value in shown
    )
    body = f"<h3>{html.escape(alert.title)}</h3><p>{html.escape(alert.cause)}</p><table>{rows}</table>"
    return _message(subject, to, text, body)


def digest_mail(alerts: list[Alert], to: list[str]) -> EmailMessage:
    failing = sum(1 for a in alerts if a.kind != "check_resolved")
    title = f"{len(alerts)} alerts ({failing} failing, {len(alerts) - failing} resolved)"
    text = title + "\n\n" + "\n".join(f"{a.occurred_at} {a.title}: {a.cause}" for a in alerts)
    rows = "".join(
        f"<tr><td>{html.escape(a.occurred_at)}</td><td>{html.escape(a.title)}</td><td>{html.escape(a.cause)}</td></tr>"
        for a in alerts
    )
    body = f"<h3>{html.escape(title)}</h3><table>{rows}</table>"
    return _message(f"{SUBJECT_PREFIX} {title}", to, text, body)


def _message(subject: str, to: list[str], text: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = " ".join(subject.split())[:200]  # one header line, whatever the cause held
    message["To"] = ", ".join(to)
    message.set_content(text)
    message.add_alternative(f"<!DOCTYPE html><html><body>{body}</body></html>", subtype="html")
    return message


def _html_value(label: str, value: str) -> str:
    if label == "run":
        return f'<a href="{html.escape(value)}">{html.escape(value)}</a>'
    return html.escape(value)


def post(
    url: str,
    body: dict | list,
    *,
    attempts: int,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    receiver: str = "webhook",
) -> None:
    """POST `body` as JSON; retry connection errors, 429 and 5xx with exponential backoff.
    Raises AlertUndelivered (permanent on other 4xx answers) after the last attempt."""
    data = json.dumps(body).encode()
    url, headers = _credentials_as_header(url)
    host = urllib.parse.urlsplit(url).netloc
    problem, wait = "no attempt made", BACKOFF_SECONDS
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=data, method="POST", headers=headers)
        retry_after = None
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked in config
                response.read()
            return
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code} {exc.reason}"
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise AlertUndelivered(f"{receiver} at {host} refused the alert: {problem}", permanent=True) from None
            retry_after = _retry_after(exc.headers.get("Retry-After"))
        except (ValueError, http.client.InvalidURL) as exc:  # a URL urllib cannot use (its message may quote it)
            raise AlertUndelivered(
                f"{receiver} URL for {host} is not usable: {type(exc).__name__}", permanent=True
            ) from None
        except http.client.HTTPException as exc:  # a garbled or cut-off answer
            problem = type(exc).__name__
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out
            reason = getattr(exc, "reason", exc)
            problem = str(reason) or type(reason).__name__
        if attempt < attempts:
            sleep(retry_after if retry_after is not None else wait)
            wait *= 2
    raise AlertUndelivered(f"{receiver} at {host} unreachable after {attempts} attempts: {problem}")


def _credentials_as_header(url: str) -> tuple[str, dict[str, str]]:
    """`http://user:pass@host/…` -> the URL without them, and an `Authorization: Basic` header:
    urllib would take the userinfo for part of the host name (and fail to resolve it)."""
    parts = urllib.parse.urlsplit(url)
    headers = {"Content-Type": "application/json"}
    if parts.username is None and parts.password is None:
        return url, headers
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), headers


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), MAX_RETRY_AFTER_SECONDS) if value else None
    except ValueError:
        return None  # an HTTP date: keep our own backoff


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
