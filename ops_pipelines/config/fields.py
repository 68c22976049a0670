"""Field types every section uses: names, DSNs, durations, paths, cron, zones, sizes, and the
frozen, strict `Section` every settings model derives from.
"""

import os
import re
import zoneinfo
from pathlib import Path
from typing import Annotated

from psycopg.conninfo import conninfo_to_dict
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    SecretStr,
)

from ops_pipelines import cron
from ops_pipelines.units import Duration, parse_duration, parse_size

# Database and rule names become Dagster partition keys, asset names, run tags and folder names.
_NAME = re.compile(r"^[A-Za-z0-9_]{1,63}$")


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


def check_timezone(value: str) -> str:
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
            if name and check_timezone(name):
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


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
