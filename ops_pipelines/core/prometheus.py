"""The Prometheus text format for node_exporter's textfile collector: per-database gauges.

node_exporter reads every `*.prom` file in its `--collector.textfile.directory` on each scrape, so
the file is replaced atomically (never read half-written). Timestamps are Unix seconds, so alerts
read like `time() - ops_pipelines_backup_last_timestamp_seconds > 26 * 3600`.
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DatabaseFigures:
    database: str
    backup_last_timestamp: float | None  # start of the newest complete backup; None: never backed up
    backup_last_bytes: int | None
    restore_verified_timestamp: float | None  # when the newest passing restore test finished
    restore_seconds: float | None
    # when the newest passing off-site drill finished; 0: never; None: no off-site store configured
    offsite_verified_timestamp: float | None
    check_errors: int  # checks whose latest evaluation failed, with severity error
    check_warnings: int  # ... with severity warning
    capacity_days_to_full: float | None  # math.inf: no crossing forecast; None: no forecast yet


# name, help, the figure; a database without the figure gets no sample for that gauge,
# except the two "last" timestamps, which read 0 (never) so an age alert fires for them too.
GAUGES = [
    (
        "ops_pipelines_backup_last_timestamp_seconds",
        "Start of the newest complete backup (Unix time; 0: none).",
        lambda f: f.backup_last_timestamp or 0,
    ),
    ("ops_pipelines_backup_last_bytes", "Size of the newest complete backup file.", lambda f: f.backup_last_bytes),
    (
        "ops_pipelines_restore_verified_last_timestamp_seconds",
        "When the newest passing restore test finished (Unix time; 0: none).",
        lambda f: f.restore_verified_timestamp or 0,
    ),
    (
        "ops_pipelines_offsite_restore_verified_last_timestamp_seconds",
        "When the newest passing off-site drill (offsite_restore_test, read from S3) finished (Unix time; 0: none).",
        lambda f: f.offsite_verified_timestamp,
    ),
    (
        "ops_pipelines_restore_last_duration_seconds",
        "pg_restore time of the newest passing restore test.",
        lambda f: f.restore_seconds,
    ),
    (
        "ops_pipelines_capacity_days_to_full",
        "Days until the volume is forecast full (+Inf: no crossing within the horizon).",
        lambda f: f.capacity_days_to_full,
    ),
]


def render(figures: list[DatabaseFigures], generated_at: float) -> str:
    lines = []
    for name, help_text, value_of in GAUGES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for figure in figures:
            value = value_of(figure)
            if value is not None:
                lines.append(f'{name}{{database="{_escape(figure.database)}"}} {_number(value)}')
    name = "ops_pipelines_check_failures"
    lines += [f"# HELP {name} Asset checks whose latest evaluation failed, by severity.", f"# TYPE {name} gauge"]
    for figure in figures:
        for severity, count in (("error", figure.check_errors), ("warning", figure.check_warnings)):
            lines.append(f'{name}{{database="{_escape(figure.database)}",severity="{severity}"}} {count}')
    lines += _written_at("ops_pipelines_textfile_generated_timestamp_seconds", "ops_pipelines", generated_at)
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if isinstance(value, float) and not value.is_integer():
        return repr(round(value, 3))
    return str(int(value))


def _escape(label: str) -> str:
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


HEALTH_STATES = {"passed": 0, "warning": 1, "error": 2}
# (gauge, help, the probe figure it shows)
HEALTH_FIGURES = [
    ("ops_pipelines_health_connections_ratio", "Client connections / available connections.", "connections_ratio"),
    (
        "ops_pipelines_health_longest_transaction_seconds",
        "Age of the longest statement, idle transaction or vacuum-horizon holder.",
        "longest_transaction_seconds",
    ),
    (
        "ops_pipelines_health_sequence_max_used_ratio",
        "The fullest sequence's last value / its limit.",
        "sequence_max_used_ratio",
    ),
    ("ops_pipelines_health_xid_age", "Transaction-ID age of the database (datfrozenxid).", "xid_age"),
    (
        "ops_pipelines_health_backup_volume_free_bytes",
        "Free bytes of the backup directory's volume.",
        "backup_volume_free_bytes",
    ),
]


def render_health(recorded: dict[str, list], probes: list, generated_at: float) -> str:
    """The health probe's gauges: every check's state (0 passed, 1 warning, 2 error; the last known
    one while the server is down) and the key figures of this probe. `recorded`: "db/check" ->
    [state, time]; `probes`: core.health.Probe of this tick."""
    name = "ops_pipelines_health_check_state"
    lines = [f"# HELP {name} Health check state: 0 passed, 1 warning, 2 error.", f"# TYPE {name} gauge"]
    for key, (state, _) in sorted(recorded.items()):
        database, _, check = key.rpartition("/")
        lines.append(f'{name}{{database="{_escape(database)}",check="{_escape(check)}"}} {HEALTH_STATES[state]}')
    for gauge, help_text, figure in HEALTH_FIGURES:
        lines += [f"# HELP {gauge} {help_text}", f"# TYPE {gauge} gauge"]
        for result in sorted(probes, key=lambda p: p.database):
            if figure in result.figures:
                lines.append(f'{gauge}{{database="{_escape(result.database)}"}} {_number(result.figures[figure])}')
    lines += _written_at("ops_pipelines_health_generated_timestamp_seconds", "the health probe", generated_at)
    return "\n".join(lines) + "\n"


def _written_at(name: str, writer: str, at: float) -> list[str]:
    """When the file was written: node_exporter's own mtime gauge says it too, this one survives copies."""
    return [f"# HELP {name} When {writer} wrote this file.", f"# TYPE {name} gauge", f"{name} {_number(at)}"]
