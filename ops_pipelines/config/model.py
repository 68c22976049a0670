"""`OpsConfig`, the whole parsed file: it only assembles the sections of the other modules."""

from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)

from ops_pipelines.config.archive import ArchiveRule
from ops_pipelines.config.database import DatabaseSettings
from ops_pipelines.config.fields import Dsn, Name, Section, check_timezone, machine_timezone
from ops_pipelines.config.instance import (
    REPORTS_FOLDER,
    Alerts,
    BackupStore,
    Email,
    Metrics,
    Reports,
    Retention,
    Schedules,
)
from ops_pipelines.errors import ConfigError


class UnknownDatabase(ConfigError, KeyError):
    """A database name (a partition, a CLI argument) that the config does not define. A KeyError too,
    for callers that looked names up in a dict before."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DatabaseConfig(DatabaseSettings):
    name: Name
    dsn: Dsn
    description: str = ""
    archive: list[ArchiveRule] = []


class OpsConfig(Section):
    # The zone every schedule's time is read in; unset: the machine's (machine_timezone), never a guess.
    timezone: Annotated[str, AfterValidator(check_timezone)] = Field(default_factory=machine_timezone)
    backup_store: BackupStore
    retention: Retention = Retention()
    alerts: Alerts = Alerts()
    metrics: Metrics = Metrics()
    reports: Reports = Reports()
    email: Email | None = None  # the SMTP server for alerts.email_to and reports.email_to
    schedules: Schedules = Schedules()
    defaults: DatabaseSettings = DatabaseSettings()
    databases: list[DatabaseConfig] = Field(min_length=1)
    source: Path | None = Field(default=None, exclude=True)  # the file it came from

    @model_validator(mode="after")
    def _mail_needs_a_server(self) -> "OpsConfig":
        for where, recipients in (
            ("alerts.email_to", self.alerts.email_to),
            ("reports.email_to", self.reports.email_to),
        ):
            if recipients and self.email is None:
                raise ValueError(f"{where} is set but there is no email section (host, port, sender) to send through")
            bad = [r for r in recipients if "@" not in r]
            if bad:
                raise ValueError(f"{where}: {bad[0]!r} is not an e-mail address")
        return self

    def database(self, name: str) -> DatabaseConfig:
        for db in self.databases:
            if db.name == name:
                return db
        names = [db.name for db in self.databases]
        shown = ", ".join(names[:10]) + (f" … ({len(names)} in all)" if len(names) > 10 else "")
        raise UnknownDatabase(f"no database {name!r} in {self.source or 'the config'} (it has: {shown or 'none'})")

    def retention_for(self, db: DatabaseConfig) -> Retention:
        return db.backup.retention or self.retention

    @property
    def reports_dir(self) -> Path:
        return self.reports.dir or self.backup_store.local_dir / REPORTS_FOLDER
