"""The one YAML file a DBA edits: its model, `${VAR}` interpolation and validation.

`load_config(path)` returns a validated, immutable `OpsConfig` or raises `ConfigError` with one line
naming the file and the key: `config.yaml: databases[2].archive[0].older_than: expected a duration
like "365 days" or "26h", got "1y"`. Nothing here reads the environment at import time.

A `defaults:` section holds per-database settings shared by every database; a database's own
settings win, key by key (lists are replaced, not merged).
"""

import os
import re
import typing
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

try:  # libyaml's parser, which PyYAML's wheels include: a 500-database config parses in 0.1 s, not 1.3 s
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]
from psycopg.conninfo import conninfo_to_dict
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
    ValidationError,
    model_validator,
)

from ops_pipelines import cron
from ops_pipelines.errors import ConfigError
from ops_pipelines.redact import mask_secrets
from ops_pipelines.units import Duration, parse_duration, parse_size

CONFIG_ENV_VAR = "OPS_PIPELINES_CONFIG"
REPORTS_FOLDER = "reports"  # beside the databases' backup folders, locally and in S3
DEMO_HINT = "run the demo with ./scripts/demo.sh, or point it at your YAML file (see README.md)"

# Database and rule names become Dagster partition keys, asset names, run tags and folder names.
_NAME = re.compile(r"^[A-Za-z0-9_]{1,63}$")
_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Keys whose values are never echoed in an error message (any other echoed value is masked too).
_SECRET_KEYS = {"dsn", "scratch_dsn", "webhook_url", "password"}
# Errors about a whole section or list given as something else: its value is never echoed, it may
# be anything (a DSN pasted where the databases list goes, a webhook URL as the alerts section).
_SHAPE_ERRORS = {"model_type", "model_attributes_type", "dict_type", "list_type", "tuple_type"}


# ---------------------------------------------------------------------------- field types


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f'"{value}" is not a valid name: it becomes a Dagster partition key and asset name '
            "(letters, digits and _ only, at most 63)"
        )
    return value


def _check_dsn(value: SecretStr) -> SecretStr:
    try:
        params = conninfo_to_dict(value.get_secret_value())
    except Exception:  # the message would echo the DSN, password included
        raise ValueError("not a valid libpq connection string or URI") from None
    if "sslpassword" in params:  # pg_dump/pg_restore could only get it on their command line
        raise ValueError("sslpassword is not supported: use an unencrypted client key (mode 0600) instead")
    return value


def _positive_duration(value: object) -> Duration:
    """A duration longer than zero, months and years allowed (`older_than: 1 year`)."""
    duration = parse_duration(value)
    if duration.months <= 0 and duration.seconds <= 0:
        raise ValueError(f'expected a duration longer than zero, got "{duration.text}"')
    return duration


def _fixed_duration(value: object) -> Duration:
    """A duration longer than zero and of a fixed length: timeouts and ages. A zero timeout means
    "wait forever" to PostgreSQL, and a month has no fixed number of seconds."""
    duration = _positive_duration(value)
    if duration.months:
        raise ValueError(
            f'"{duration.text}" has months or years, which have no fixed length here: give days, like "30 days"'
        )
    return duration


def _file_mode(value: object) -> int:
    """`"0640"` (octal, quoted) or 0640 (YAML reads an unquoted leading 0 as octal)."""
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3}", value.strip()):
        return int(value.strip(), 8)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
        return value
    raise ValueError(f'expected an octal file mode like "0640", got {value!r}')


def _check_absolute(value: Path) -> Path:
    if not value.is_absolute():  # relative to what? the daemon's, the webserver's and each run's cwd differ
        raise ValueError(f'expected an absolute path (starting with /), got "{value}"')
    return value


def _check_cron(value: str) -> str:
    if not cron.is_valid(value):
        raise ValueError(f'expected a cron expression like "0 2 * * *", got "{value}"')
    return value


def _check_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'unknown time zone "{value}" (expected an IANA name like Asia/Ho_Chi_Minh)') from None
    return value


def machine_timezone() -> str:
    """The zone schedules run in when the config names none: $TZ, else the zone /etc/localtime links
    to, else /etc/timezone, else UTC. Set `timezone` in the config to not depend on the machine."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    localtime = os.path.realpath("/etc/localtime")
    if "/zoneinfo/" in localtime:
        candidates.append(localtime.split("/zoneinfo/", 1)[1])
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    for name in candidates:
        try:
            if name and _check_timezone(name):
                return name
        except ValueError:
            continue
    return "UTC"


def parse_qualified_name(value: object) -> tuple[str, str]:
    """`public.orders`, `orders` (schema public) or `"My Schema"."Order Lines"` -> (schema, table)."""
    if not isinstance(value, str):
        raise ValueError(f'expected a table name like "public.orders", got {value!r}')
    part = r'(?:"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*))'
    match = re.fullmatch(rf"\s*{part}(?:\.{part})?\s*", value)
    if not match:
        raise ValueError(f'expected a table name like "public.orders" or "\\"My Schema\\".orders", got "{value}"')
    quoted1, plain1, quoted2, plain2 = match.groups()
    first = quoted1.replace('""', '"') if quoted1 is not None else plain1.lower()
    if quoted2 is None and plain2 is None:
        return ("public", first)
    second = quoted2.replace('""', '"') if quoted2 is not None else plain2.lower()
    return (first, second)


Name = Annotated[str, AfterValidator(_check_name)]
Dsn = Annotated[SecretStr, AfterValidator(_check_dsn)]
Cron = Annotated[str, AfterValidator(_check_cron)]
DurationText = Annotated[Duration, PlainValidator(_positive_duration)]  # calendar months allowed
FixedDuration = Annotated[Duration, PlainValidator(_fixed_duration)]  # timeouts, ages: fixed length, > 0
AbsolutePath = Annotated[Path, AfterValidator(_check_absolute)]
FileMode = Annotated[int, PlainValidator(_file_mode)]
Size = Annotated[int, PlainValidator(parse_size)]
QualifiedName = Annotated[tuple[str, str], PlainValidator(parse_qualified_name)]
Ratio = Annotated[float, Field(gt=0, le=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------- store, alerts


class S3Store(_Section):
    bucket: str = Field(min_length=3)
    prefix: str = ""
    endpoint_url: str | None = None  # any S3-compatible server (MinIO, Ceph, moto)
    region: str | None = None
    # How long one request may wait for an answer before it is retried (3 attempts in all): a frozen
    # endpoint then fails within about a minute, naming itself, instead of five.
    timeout: FixedDuration = parse_duration("20s")


class BackupStore(_Section):
    local_dir: AbsolutePath
    s3: S3Store | None = None


class Retention(_Section):
    """How many backups to keep per period; the newest and the newest proven are always kept."""

    daily: int = Field(default=7, ge=0)
    weekly: int = Field(default=4, ge=0)
    monthly: int = Field(default=6, ge=0)


class Alerts(_Section):
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


class Email(_Section):
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


class Schedules(_Section):
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


class Metrics(_Section):
    dsn: Dsn | None = None  # where capacity samples are kept; Grafana can read them there
    # A node_exporter textfile (`--collector.textfile.directory`), rewritten after every run.
    textfile_path: AbsolutePath | None = None

    @model_validator(mode="after")
    def _prom_suffix(self) -> "Metrics":
        if self.textfile_path is not None and self.textfile_path.suffix != ".prom":
            raise ValueError("textfile_path must end in .prom (node_exporter reads only *.prom files)")
        return self


class Reports(_Section):
    dir: AbsolutePath | None = None  # default: <backup_store.local_dir>/reports
    failed_login_threshold: int = Field(default=10, ge=1)
    # SQL returning (account, failed_logins, last_failed_at) for accounts over %(threshold)s failed
    # logins since %(since)s; default: the runbook's query on auth.login_attempts (sql/failed_logins.sql).
    failed_login_query: str | None = None
    long_running_after: FixedDuration = parse_duration("5 minutes")  # active or idle in transaction
    # Reports and charts name databases, tables and accounts: private unless you let a group read them ("0640").
    file_mode: FileMode = 0o600
    email_to: list[str] = []  # the weekly report mailed here (needs the top-level email section)


# ---------------------------------------------------------------------------- per database


class Timeouts(_Section):
    connect: FixedDuration = parse_duration("10s")
    lock: FixedDuration = parse_duration("5s")  # maintenance waits this long for a lock, then skips
    statement: FixedDuration = parse_duration("1h")


class BackupSettings(_Section):
    max_age_hours: float = Field(default=26, gt=0)
    count_tables: list[QualifiedName] = []  # empty: count every table at dump time
    # zstd level and worker threads; the defaults are chosen from bench/bench_backup.py's table on ERP-like
    # data (bench/RESULTS.md). threads 0: compress in the backup's own thread.
    compression_level: int = Field(default=1, ge=1, le=19)
    compression_threads: int = Field(default=0, ge=0, le=64)
    retention: Retention | None = None  # default: the top-level retention


class RestoreTestSettings(_Section):
    sandbox: Literal["local_cluster", "scratch_database", "docker"] = "local_cluster"
    bin_dir: AbsolutePath | None = None  # PostgreSQL binaries for local_cluster; default: newest found
    scratch_dsn: Dsn | None = None  # the server scratch_database restores into
    docker_image: str | None = None  # default: postgres:<major of the dump>
    jobs: int = Field(default=2, ge=1, le=64)
    sanity_queries: list[str] = []  # each must return at least one row after the restore
    max_age: FixedDuration = parse_duration("8 days")
    offsite_max_age: FixedDuration = parse_duration("35 days")  # the S3 drill (offsite_restore_test) runs monthly
    # ... and also after every this many off-site copies of the database (0: monthly only)
    offsite_every_backups: int = Field(default=10, ge=0)

    @model_validator(mode="after")
    def _scratch_needs_server(self) -> "RestoreTestSettings":
        if self.sandbox == "scratch_database" and self.scratch_dsn is None:
            raise ValueError("sandbox scratch_database needs scratch_dsn (the server to restore into)")
        return self


class VacuumSettings(_Section):
    dead_ratio: Ratio = 0.2
    min_dead_tuples: int = Field(default=1000, ge=0)
    stale_analyze_ratio: Ratio = 0.1
    xid_age_warn: int = Field(default=500_000_000, gt=0)
    xid_age_error: int = Field(default=1_200_000_000, gt=0)

    @model_validator(mode="after")
    def _warn_before_error(self) -> "VacuumSettings":
        if self.xid_age_warn >= self.xid_age_error:
            raise ValueError(
                f"xid_age_warn ({self.xid_age_warn:,}) must be below xid_age_error ({self.xid_age_error:,})"
            )
        return self


class ReindexSettings(_Section):
    bloat_ratio: Ratio = 0.3
    min_index_size: Size = parse_size("10MB")


class MaintenanceWindowSettings(_Section):
    vacuum_full_tables: list[QualifiedName] = []
    full_reindex: bool = False


class CapacitySettings(_Section):
    volume_path: AbsolutePath | None = None  # statvfs of this path when the database is on this host
    volume_capacity: Size | None = None  # else this figure against the server's database sizes
    warn_ratio: Ratio = 0.7
    warn_within: FixedDuration = parse_duration("90 days")
    error_within: FixedDuration = parse_duration("30 days")
    connection_warn_ratio: Ratio = 0.8

    @model_validator(mode="after")
    def _warn_sooner_than_error(self) -> "CapacitySettings":
        if self.warn_within.seconds < self.error_within.seconds:
            raise ValueError(
                f"warn_within ({self.warn_within}) must be at least error_within ({self.error_within}): "
                "the warning comes first"
            )
        return self


class HealthSettings(_Section):
    """The live probe (`health` and its checks, every `schedules.health`): warn, then error, thresholds.
    Transaction-ID wraparound uses `vacuum.xid_age_warn` / `xid_age_error`."""

    connections_warn_ratio: Ratio = 0.8  # of max_connections less the reserved slots
    connections_error_ratio: Ratio = 0.95
    max_connections_used: int | None = Field(default=None, ge=1)  # an absolute limit too (the runbooks' 150)
    long_query_warn: FixedDuration = parse_duration("5 min")  # one statement running this long
    long_query_error: FixedDuration = parse_duration("30 min")
    idle_in_transaction_warn: FixedDuration = parse_duration("5 min")  # a session idle inside a transaction
    idle_in_transaction_error: FixedDuration = parse_duration("30 min")
    xmin_held_warn: FixedDuration = parse_duration("30 min")  # a transaction holding back vacuum's horizon
    xmin_held_error: FixedDuration = parse_duration("2 h")
    blocked_warn: FixedDuration = parse_duration("1 min")  # a session waiting on a lock
    blocked_error: FixedDuration = parse_duration("5 min")
    sequence_warn_ratio: Ratio = 0.75  # of the column's type maximum (or the sequence's, if lower)
    sequence_error_ratio: Ratio = 0.9
    prepared_xact_warn: FixedDuration = parse_duration("5 min")
    prepared_xact_error: FixedDuration = parse_duration("30 min")
    replica_lag_warn: FixedDuration = parse_duration("1 min")
    replica_lag_error: FixedDuration = parse_duration("10 min")
    slot_retained_warn: Size = parse_size("1 GB")  # WAL a replication slot keeps on the primary
    slot_retained_error: Size = parse_size("10 GB")
    cache_hit_min: Ratio = 0.95  # the runbooks' "more than 95 %", over the interval since the previous probe
    volume_warn_free_ratio: Ratio = 0.2  # backup_volume and data_volume
    volume_error_free_ratio: Ratio = 0.1
    volume_min_free: Size = parse_size("5 GB")  # an error below this, whatever the ratio
    # Runbook 002: terminate sessions idle in a transaction for longer than this (off unless set).
    terminate_idle_in_transaction_after: FixedDuration | None = None

    @model_validator(mode="after")
    def _warn_before_error(self) -> "HealthSettings":
        pairs = [
            ("connections_warn_ratio", self.connections_warn_ratio, self.connections_error_ratio),
            ("sequence_warn_ratio", self.sequence_warn_ratio, self.sequence_error_ratio),
            ("long_query_warn", self.long_query_warn.seconds, self.long_query_error.seconds),
            ("idle_in_transaction_warn", self.idle_in_transaction_warn.seconds, self.idle_in_transaction_error.seconds),
            ("xmin_held_warn", self.xmin_held_warn.seconds, self.xmin_held_error.seconds),
            ("blocked_warn", self.blocked_warn.seconds, self.blocked_error.seconds),
            ("prepared_xact_warn", self.prepared_xact_warn.seconds, self.prepared_xact_error.seconds),
            ("replica_lag_warn", self.replica_lag_warn.seconds, self.replica_lag_error.seconds),
            ("slot_retained_warn", self.slot_retained_warn, self.slot_retained_error),
        ]
        for name, warn, error in pairs:
            if warn > error:
                raise ValueError(f"{name} must not exceed its error threshold: the warning comes first")
        if self.volume_warn_free_ratio < self.volume_error_free_ratio:
            raise ValueError("volume_warn_free_ratio must be at least volume_error_free_ratio (less free is worse)")
        return self


class IntegritySettings(_Section):
    """`integrity` (weekly): amcheck's bt_index_check of every btree index, and verify_heapam of every
    table (PostgreSQL 14+) when `heap` is set."""

    heap: bool = False
    index_timeout: FixedDuration = parse_duration("10 min")  # each index's (and table's) statement timeout


class DatabaseSettings(_Section):
    """Everything per database that may also be set once under `defaults:`."""

    timeouts: Timeouts = Timeouts()
    backup: BackupSettings = BackupSettings()
    restore_test: RestoreTestSettings = RestoreTestSettings()
    vacuum: VacuumSettings = VacuumSettings()
    reindex: ReindexSettings = ReindexSettings()
    maintenance_window: MaintenanceWindowSettings = MaintenanceWindowSettings()
    capacity: CapacitySettings = CapacitySettings()
    health: HealthSettings = HealthSettings()
    integrity: IntegritySettings = IntegritySettings()


def _key_columns(value: object) -> tuple[str, ...]:
    """`order_id`, or `[order_id, line_no]` for a composite foreign key; each column once."""
    columns = [value] if isinstance(value, str) else value
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) and c for c in columns):
        raise ValueError(f"expected a column name or a list of column names, got {value!r}")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(f"column {repeated[0]} is listed twice")
    return tuple(columns)


KeyColumns = Annotated[tuple[str, ...], PlainValidator(_key_columns)]


class ArchiveChild(_Section):
    """A table whose rows reference the rule's table (or a child's: `children` nest, order ->
    shipment -> shipment_line). Its rows move with the rows they reference."""

    table: QualifiedName
    fk: KeyColumns  # the child's column(s) referencing its parent's key: `order_id` or `[order_id, line_no]`
    children: list["ArchiveChild"] = []


class ArchiveDestination(_Section):
    schema_: str = Field(default="archive", alias="schema", min_length=1)
    dsn: Dsn | None = None  # another database (the runbook's "archive DB"); default: same one


class ArchiveRule(_Section):
    name: Name
    table: QualifiedName
    age_column: str
    older_than: DurationText
    status_column: str | None = None
    status_in: list[str] = []
    where: str | None = None  # extra SQL predicate, written by the DBA who owns this file
    children: list[ArchiveChild] = []
    # Tables whose foreign keys into this rule's tables you accept: their rows stay, and their
    # ON DELETE rule applies (a reference to a moved row fails the batch, or is cascaded / nulled).
    # Any other referencing table that is not a child refuses the rule before a row moves.
    allow_references_from: list[QualifiedName] = []
    destination: ArchiveDestination = ArchiveDestination()
    # Delete the selected rows without keeping a copy (data nobody needs back: sensor readings, logs).
    # Only this switch purges: no value of `destination` ever does, so a typo there cannot delete.
    purge: bool = False
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    max_rows: int | None = Field(default=None, ge=1)
    max_runtime: FixedDuration | None = None  # stop cleanly between batches after this long
    # Pause between batches while this replica replays more than max_replica_lag behind (pt-archiver's
    # --check-slave-lag): deletes in bulk must not leave the ERP's read replicas behind.
    replica_dsn: Dsn | None = None
    max_replica_lag: FixedDuration | None = None

    @model_validator(mode="after")
    def _status_pair(self) -> "ArchiveRule":
        if bool(self.status_column) != bool(self.status_in):
            raise ValueError("status_column and status_in go together: set both or neither")
        if (self.replica_dsn is None) != (self.max_replica_lag is None):
            raise ValueError("replica_dsn and max_replica_lag go together: set both or neither")
        if self.purge and self.destination.dsn is not None:
            raise ValueError("purge: true keeps no copy, so destination.dsn would never be used: remove one of the two")
        return self


class DatabaseConfig(DatabaseSettings):
    name: Name
    dsn: Dsn
    description: str = ""
    archive: list[ArchiveRule] = []


class OpsConfig(_Section):
    # The zone every schedule's time is read in; unset: the machine's (machine_timezone), never a guess.
    timezone: Annotated[str, AfterValidator(_check_timezone)] = Field(default_factory=machine_timezone)
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


# ---------------------------------------------------------------------------- loading


def load_config_from_env(environ: typing.Mapping[str, str] | None = None) -> OpsConfig:
    environ = os.environ if environ is None else environ
    path = environ.get(CONFIG_ENV_VAR, "").strip()
    if not path:
        raise ConfigError(f"{CONFIG_ENV_VAR} is not set, so there is nothing to manage: {DEMO_HINT}")
    return load_config(path, environ)


def load_config(path: str | Path, environ: typing.Mapping[str, str] | None = None) -> OpsConfig:
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    return parse_config(text, environ, source=path)


def parse_config(text: str, environ: typing.Mapping[str, str], source: Path | str = "<config>") -> OpsConfig:
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: {where}invalid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with backup_store and databases at the top")
    raw = _interpolate(raw, environ, source, "")
    if isinstance(raw.get("defaults"), dict):
        # Checked alone first, so a bad default is reported once, under `defaults`.
        try:
            DatabaseSettings.model_validate(raw["defaults"])
        except ValidationError as exc:
            raise ConfigError(f"{source}: {_describe(exc, ['defaults'])}") from None
    raw = _apply_defaults(raw)
    try:
        config = OpsConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None
    _check_unique(config, source)
    return config.model_copy(update={"source": Path(source)})


class _UniqueKeyLoader(_SafeLoader):  # pyright: ignore[reportGeneralTypeIssues] (libyaml has no stubs)
    """PyYAML keeps the last of two equal keys silently; a config must not."""

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f'duplicate key "{key}"', key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class UnknownDatabase(ConfigError, KeyError):
    """A database name (a partition, a CLI argument) that the config does not define. A KeyError too,
    for callers that looked names up in a dict before."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def launchpad_dsn(raw: str, where: str, environ: typing.Mapping[str, str] | None = None) -> str:
    """A DSN typed into a launchpad: Dagster stores the run's config as typed (and shows it in the UI),
    so a password written in it is refused; `${VAR}` is expanded here, in the run, from the environment
    (the whole DSN, or just its password)."""
    if not raw:
        return raw
    try:
        typed = conninfo_to_dict(raw)
    except Exception:  # noqa: BLE001 - `${VAR}` standing for the whole DSN does not parse before expansion
        typed = {}
    password = str(typed.get("password") or "")
    if password and not re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", password):
        raise ConfigError(
            f"{where} holds a password, which the run's config would keep in plain text: write it as "
            "${VAR} (read from the run's environment), or leave it out and use ~/.pgpass or PGPASSWORD"
        )
    expanded = _interpolate(raw, environ if environ is not None else os.environ, "launchpad", where)
    try:
        conninfo_to_dict(expanded)
    except Exception as exc:  # noqa: BLE001 - psycopg's message may quote the DSN: only its type is said
        raise ConfigError(f"{where}: not a libpq connection string or URI ({type(exc).__name__})") from None
    return expanded


def _interpolate(value: Any, environ: typing.Mapping[str, str], source: Any, where: str) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string; `$$` is a literal `$`."""
    if isinstance(value, dict):
        return {k: _interpolate(v, environ, source, _join(where, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ, source, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{source}: {where}: environment variable {name} is not set")

    return _ENV_REF.sub(substitute, value)


def _apply_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    defaults = raw.get("defaults")
    databases = raw.get("databases")
    if not isinstance(defaults, dict) or not isinstance(databases, list):
        return raw
    merged = [_deep_merge(defaults, db) if isinstance(db, dict) else db for db in databases]
    return {**raw, "databases": merged}


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def _check_unique(config: OpsConfig, source: Any) -> None:
    _refuse_duplicates([db.name for db in config.databases], "databases", "database name", source)
    for i, db in enumerate(config.databases):
        if db.name == REPORTS_FOLDER:
            raise ConfigError(
                f'{source}: databases[{i}].name: "{REPORTS_FOLDER}" is reserved for the reports folder of the backup '
                "store"
            )
    for i, db in enumerate(config.databases):
        _refuse_duplicates([rule.name for rule in db.archive], f"databases[{i}].archive", "archive rule", source)


def _refuse_duplicates(names: list[str], where: str, what: str, source: Any) -> None:
    first_seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first_seen:
            raise ConfigError(
                f'{source}: {where}[{i}].name: duplicate {what} "{name}" (also {where}[{first_seen[name]}])'
            )
        first_seen[name] = i


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _describe(exc: ValidationError, prefix: list[Any] | None = None) -> str:
    """The first problem as `key.path: what is wrong`, one line, secrets never echoed."""
    errors = exc.errors()
    error = errors[0]
    loc = (prefix or []) + [part for part in error["loc"] if not _is_union_tag(part)]
    where = ""
    for part in loc:
        where = f"{where}[{part}]" if isinstance(part, int) else _join(where, part)
    message = re.sub(r"^(Value error|Assertion failed), ", "", error["msg"])
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        message = "unknown key" + (f" (allowed here: {', '.join(allowed)})" if allowed else "")
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "too_short" and loc == ["databases"]:
        message = "list at least one database"
    elif kind in _SHAPE_ERRORS:
        wanted = "a list" if kind in {"list_type", "tuple_type"} else "a mapping of keys to values"
        message = f"expected {wanted}, got {_kind_of(error.get('input'))}"
    elif kind not in {"value_error", "assertion_error"} and not (_SECRET_KEYS & set(map(str, loc))):
        shown = error.get("input")
        message = f"{message}, got {shown!r}" if isinstance(shown, (str, int, float, bool)) else message
    more = f" (and {len(errors) - 1} more, shown after this one is fixed)" if len(errors) > 1 else ""
    return mask_secrets(f"{where or 'top level'}: {message}{more}")


def _kind_of(value: Any) -> str:
    """What a value is, without showing it."""
    return {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a mapping",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def _is_union_tag(part: Any) -> bool:
    # pydantic adds the member type's name to the location inside unions ("str", "function-after[...]")
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool"})


def _allowed_keys(loc: list[Any]) -> list[str]:
    model: Any = OpsConfig
    if loc[:1] == ["defaults"]:
        model, loc = DatabaseSettings, loc[1:]
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model else None
        model = _inner_model(field.annotation) if field else None
        if model is None:
            return []
    return [f.alias or name for name, f in model.model_fields.items() if not f.exclude]


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found:
            return found
    return None
