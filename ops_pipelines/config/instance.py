"""Settings for the whole instance: the backup store (local, S3), retention, alerts, e-mail,
schedules, metrics and reports.
"""

import re
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    model_validator,
)

from ops_pipelines.config.fields import AbsolutePath, Cron, Dsn, FileMode, FixedDuration, Section
from ops_pipelines.units import parse_duration

REPORTS_FOLDER = "reports"  # beside the databases' backup folders, locally and in S3


class S3Store(Section):
    bucket: str = Field(min_length=3)
    prefix: str = ""
    endpoint_url: str | None = None  # any S3-compatible server (MinIO, Ceph, moto)
    region: str | None = None
    # How long one request may wait for an answer before it is retried (3 attempts in all): a frozen
    # endpoint then fails within about a minute, naming itself, instead of five.
    timeout: FixedDuration = parse_duration("20s")


class BackupStore(Section):
    local_dir: AbsolutePath
    s3: S3Store | None = None


class Retention(Section):
    """How many backups to keep per period; the newest and the newest proven are always kept."""

    daily: int = Field(default=7, ge=0)
    weekly: int = Field(default=4, ge=0)
    monthly: int = Field(default=6, ge=0)


class Alerts(Section):
    webhook_url: SecretStr | None = None  # Slack URLs carry a token: never echoed
    format: Literal["slack", "generic"] = "slack"
    ui_base_url: str | None = None  # links in alerts point at runs under this URL
    check_severity: Literal["warning", "error"] = "warning"  # the least severe failed check that alerts
    attempts: int = Field(default=3, ge=1, le=10)  # per alert and sensor tick; undelivered ones wait for the next tick
    timeout: FixedDuration = parse_duration("10s")
    # How often the alert sensors look for failed runs and checks: the longest an alert waits.
    every: FixedDuration = parse_duration("30s")
    # More alerts than this due at once (a storm: a server down fails many checks) go out as one digest.
    digest_after: int = Field(default=5, ge=1)
    email_to: list[str] = []  # alerts mailed here too (needs the top-level email section)
    # Prometheus Alertmanager (http://host:9093): every failing check is posted to /api/v2/alerts as long
    # as it fails, and posted with its end when it passes; failed runs once, for an hour.
    alertmanager_url: SecretStr | None = None  # may carry basic-auth credentials: never echoed

    @model_validator(mode="after")
    def _http_url(self) -> "Alerts":
        if self.webhook_url is not None and not re.match(r"^https?://[^/\s]+", self.webhook_url.get_secret_value()):
            raise ValueError("webhook_url must be an http:// or https:// URL")
        url = self.alertmanager_url
        if url is not None and not re.match(r"^https?://[^/\s]+", url.get_secret_value()):
            raise ValueError("alertmanager_url must be an http:// or https:// URL (Alertmanager's base URL)")
        return self


class Email(Section):
    """The SMTP server alerts and reports are mailed through."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    sender: str = Field(min_length=3)  # the From address
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None  # write it as ${SMTP_PASSWORD}: never echoed
    timeout: FixedDuration = parse_duration("10s")
    attempts: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def _credentials_pair(self) -> "Email":
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: set both or neither")
        if "@" not in self.sender:
            raise ValueError(f"sender {self.sender!r} is not an e-mail address")
        return self


class Schedules(Section):
    """Cron expressions, read in the config's timezone. Defaults follow the runbooks."""

    backup: Cron = "0 2 * * *"
    vacuum: Cron = "0 3 * * *"
    reindex: Cron = "0 4 * * 0"
    archive: Cron = "0 9 * * 1"
    capacity_sample: Cron = "30 1 * * *"
    report: Cron = "0 17 * * 5"
    # First Saturday of the month: cron ORs day-of-month with day-of-week, so the schedule
    # fires every Saturday and the code keeps only days 1-7.
    maintenance_window: Cron = "0 2 * * 6"
    maintenance_window_length: FixedDuration = parse_duration("4h")
    health: FixedDuration = parse_duration("5 min")  # how often the health sensor probes every database
    integrity: Cron = "0 5 * * 0"  # amcheck of every btree index (and heap), Sunday 05:00


class Metrics(Section):
    dsn: Dsn | None = None  # where capacity samples are kept; Grafana can read them there
    # A node_exporter textfile (`--collector.textfile.directory`), rewritten after every run.
    textfile_path: AbsolutePath | None = None

    @model_validator(mode="after")
    def _prom_suffix(self) -> "Metrics":
        if self.textfile_path is not None and self.textfile_path.suffix != ".prom":
            raise ValueError("textfile_path must end in .prom (node_exporter reads only *.prom files)")
        return self


class Reports(Section):
    dir: AbsolutePath | None = None  # default: <backup_store.local_dir>/reports
    failed_login_threshold: int = Field(default=10, ge=1)
    # SQL returning (account, failed_logins, last_failed_at) for accounts over %(threshold)s failed
    # logins since %(since)s; default: the runbook's query on auth.login_attempts (sql/failed_logins.sql).
    failed_login_query: str | None = None
    long_running_after: FixedDuration = parse_duration("5 minutes")  # active or idle in transaction
    # Reports and charts name databases, tables and accounts: private unless you let a group read them ("0640").
    file_mode: FileMode = 0o600
    email_to: list[str] = []  # the weekly report mailed here (needs the top-level email section)
