"""The live health probe of one database: what every runbook checks first each morning (is it up,
connections, long and blocked sessions, sequences, wraparound, replication, prepared transactions,
cache hits, disks), as one Verdict per check.

Only catalog and statistics queries, on one short autocommit session with a short statement
timeout; a query the role may not run (no pg_monitor) fails its own check with that cause and the
other checks go on. A server that is down fails `reachable` within the connect timeout, and the
checks that need the server are then not judged (None): their last state stands.
"""

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from ops_pipelines.adapters.postgres import Connection, connect, first_line, read_sql
from ops_pipelines.config import DatabaseConfig, HealthSettings
from ops_pipelines.core.verdict import Verdict
from ops_pipelines.errors import OpsError
from ops_pipelines.redact import mask_passwords, mask_secrets
from ops_pipelines.units import format_bytes

# The checks, in the order a DBA reads them. `reachable` first: the others need the server.
SERVER_CHECKS = (
    "connections",
    "long_transactions",
    "blocked_sessions",
    "sequence_headroom",
    "wraparound",
    "replication",
    "prepared_xacts",
    "cache_hit",
)
CHECKS = ("reachable", *SERVER_CHECKS, "backup_volume", "data_volume")
DESCRIPTIONS = {
    "reachable": "The database accepts a connection and answers SELECT 1 within timeouts.connect.",
    "connections": "Client connections against max_connections less the reserved slots (and health."
    "max_connections_used when set).",
    "long_transactions": "The oldest running statement, the oldest session idle in a transaction, and the oldest "
    "transaction holding back vacuum's horizon, each named (pid, role, application, query).",
    "blocked_sessions": "Sessions waiting on a lock longer than health.blocked_warn, with the sessions blocking them.",
    "sequence_headroom": "Every sequence (serial and identity columns included) against the maximum of its column's "
    "type and its own: table.column named.",
    "wraparound": "Transaction-ID and multixact age of the database against vacuum.xid_age_warn / xid_age_error.",
    "replication": "Inactive replication slots, the WAL each slot retains, and each standby's lag.",
    "prepared_xacts": "Prepared (two-phase) transactions older than health.prepared_xact_warn.",
    "cache_hit": "Buffer cache hit ratio over the interval since the previous probe (not since the stats reset).",
    "backup_volume": "Free space of backup_store.local_dir, the disk the backups fill (ratio and bytes).",
    "data_volume": "Free space of capacity.volume_path, when it is a path on this host.",
}
TYPE_MAX = {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}
STATEMENT_TIMEOUT = "5s"  # each probe query: catalog reads that take longer mean trouble of their own


@dataclass(frozen=True)
class Counters:
    """pg_stat_database's block counters at one probe: the next one's cache_hit is the difference."""

    blks_hit: int
    blks_read: int
    stats_reset: str | None  # a reset between two probes makes the difference meaningless

    def to_list(self) -> list:
        return [self.blks_hit, self.blks_read, self.stats_reset]

    @classmethod
    def from_list(cls, value) -> "Counters | None":
        try:
            return cls(int(value[0]), int(value[1]), value[2] or None)
        except (TypeError, ValueError, IndexError):
            return None

    def to_metadata(self) -> dict[str, int | str]:
        """What the cache_hit result carries, so a probe run from the UI measures from the last one."""
        return {"blks_hit": self.blks_hit, "blks_read": self.blks_read, "stats_reset": self.stats_reset or ""}

    @classmethod
    def from_metadata(cls, values: Mapping[str, object]) -> "Counters | None":
        """The counters a cache_hit result carries (`to_metadata`), or None when it carries none."""
        return cls.from_list([values.get(key) for key in ("blks_hit", "blks_read", "stats_reset")])


@dataclass
class Probe:
    database: str
    verdicts: dict[str, Verdict | None] = field(default_factory=dict)  # None: not judged this time
    counters: Counters | None = None
    figures: dict[str, float] = field(default_factory=dict)  # the gauges' key figures
    terminated: list[str] = field(default_factory=list)  # sessions ended by terminate_idle_in_transaction_after
    seconds: float = 0.0


def probe(
    db: DatabaseConfig,
    backup_dir: Path | None,
    previous: Counters | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> Probe:
    """Probe one database once; never raises for what it finds (a failing check says it)."""
    started = time.monotonic()
    result = Probe(db.name)
    settings = db.health
    try:
        with connect(
            db.dsn.get_secret_value(),
            statement_timeout=STATEMENT_TIMEOUT,
            lock_timeout="1s",
            connect_timeout=db.timeouts.connect,
            autocommit=True,
            purpose="health",
        ) as conn:
            conn.execute("SELECT 1")
            result.verdicts["reachable"] = Verdict.ok(f"answered in {(time.monotonic() - started) * 1000:.0f} ms")
            version = int(conn.info.server_version)
            for name, judge in (
                ("connections", lambda: _connections(conn, settings, result)),
                ("long_transactions", lambda: _long_transactions(conn, settings, result, log)),
                ("blocked_sessions", lambda: _blocked(conn, settings, version)),
                ("sequence_headroom", lambda: _sequences(conn, settings, result)),
                ("wraparound", lambda: _wraparound(conn, db, result)),
                ("replication", lambda: _replication(conn, settings)),
                ("prepared_xacts", lambda: _prepared(conn, settings)),
                ("cache_hit", lambda: _cache_hit(conn, settings, previous, result)),
            ):
                result.verdicts[name] = _judged(name, judge)
    except OpsError as exc:  # cannot connect (or the session broke): the server checks wait
        result.verdicts["reachable"] = Verdict.fail(f"not reachable: {mask_secrets(str(exc))}")
        for name in SERVER_CHECKS:
            result.verdicts.setdefault(name, None)
    result.verdicts["backup_volume"] = _volume("backup_volume", backup_dir, settings, result)
    path = db.capacity.volume_path
    result.verdicts["data_volume"] = (
        _volume("data_volume", path, settings, result)
        if path is not None and path.exists()
        else Verdict.ok(
            "capacity.volume_path is not set: the data volume is not watched (set it to the server's data "
            "directory when it is on this host)"
            if path is None
            else f"capacity.volume_path {path} is not a path on this host: not watched here",
        )
    )
    result.seconds = time.monotonic() - started
    return result


def _judged(name: str, judge: Callable[[], Verdict]) -> Verdict:
    try:
        return judge()
    except psycopg.errors.InsufficientPrivilege as exc:
        return Verdict.warn(f"cannot read: {first_line(exc)} (grant pg_monitor to the role)")
    except psycopg.Error as exc:
        return Verdict.warn(f"cannot read: {first_line(exc)}")


def _rows(conn: Connection, name: str, params: dict | None = None) -> list[dict]:
    return conn.execute(read_sql(name), params or {}).fetchall()


def _severity(value: float, warn: float, error: float) -> str | None:
    return "error" if value >= error else "warning" if value >= warn else None


def _verdict(severity: str | None, failing: str, passing: str, metadata: dict) -> Verdict:
    if severity is None:
        return Verdict.ok(passing, metadata)
    return Verdict(False, severity == "warning", failing, metadata)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _who(row: dict) -> str:
    app = row.get("application_name") or "?"
    return f"pid {row['pid']} ({row.get('username') or '?'}, {app})"


def _query(row: dict) -> str:
    return mask_secrets(mask_passwords(row.get("query") or ""))[:200]


# ---------------------------------------------------------------------------- the checks


def _connections(conn: Connection, settings: HealthSettings, result: Probe) -> Verdict:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        "        OR (backend_type IS NULL AND datname IS NOT NULL)) AS used,"  # other roles' without pg_monitor
        " current_setting('max_connections')::int AS max_connections,"
        " current_setting('superuser_reserved_connections')::int"
        " + COALESCE(current_setting('reserved_connections', true)::int, 0) AS reserved"
    ).fetchone()
    assert row is not None
    available = max(1, row["max_connections"] - row["reserved"])
    ratio = row["used"] / available
    result.figures["connections_ratio"] = ratio
    severity = _severity(ratio, settings.connections_warn_ratio, settings.connections_error_ratio)
    limit = settings.max_connections_used
    if limit is not None and row["used"] >= limit:
        severity = "error"
    metadata = {"used": row["used"], "available": available, "ratio": round(ratio, 4)}
    text = f"{row['used']} of {available} connections in use ({ratio:.0%})"
    limit_text = f"; limit {limit}" if limit is not None else ""
    return _verdict(
        severity,
        f"{text}: over {settings.connections_warn_ratio:.0%} / {settings.connections_error_ratio:.0%}{limit_text}",
        text,
        metadata,
    )


def _long_transactions(
    conn: Connection, settings: HealthSettings, result: Probe, log: Callable[[str], None]
) -> Verdict:
    sessions = _rows(conn, "health_sessions.sql")
    terminate_after = settings.terminate_idle_in_transaction_after
    if terminate_after is not None:
        for row in sessions:
            if (row["state"] or "").startswith("idle in transaction") and (
                row["state_seconds"] or 0
            ) >= terminate_after.seconds:
                ended = conn.execute("SELECT pg_terminate_backend(%s) AS ok", (row["pid"],)).fetchone()
                if ended and ended["ok"]:
                    what = f"{_who(row)} idle in transaction for {_duration(row['state_seconds'])}: {_query(row)!r}"
                    result.terminated.append(what)
                    log(f"terminated {what} (health.terminate_idle_in_transaction_after {terminate_after})")
                    row["state"] = "terminated"
    kinds = [
        # (label, rows of that kind, seconds of a row, warn, error)
        (
            "running statement",
            [r for r in sessions if r["state"] == "active"],
            "query_seconds",
            settings.long_query_warn.seconds,
            settings.long_query_error.seconds,
        ),
        (
            "idle in transaction",
            [r for r in sessions if (r["state"] or "").startswith("idle in transaction")],
            "state_seconds",
            settings.idle_in_transaction_warn.seconds,
            settings.idle_in_transaction_error.seconds,
        ),
        (
            "transaction holding back vacuum",
            [r for r in sessions if r["holds_xmin"] and r["state"] != "terminated"],
            "xact_seconds",
            settings.xmin_held_warn.seconds,
            settings.xmin_held_error.seconds,
        ),
    ]
    worst, problems, metadata, longest = None, [], {}, 0.0
    for label, rows, seconds_of, warn, error in kinds:
        oldest = max(rows, key=lambda r: r[seconds_of] or 0, default=None)
        seconds = (oldest[seconds_of] or 0) if oldest else 0
        key = label.split()[0] if label != "idle in transaction" else "idle_in_transaction"
        metadata[f"oldest_{key}_seconds"] = round(seconds, 1)
        longest = max(longest, seconds)
        severity = _severity(seconds, warn, error)
        if severity and oldest:
            problems.append(f"{label} for {_duration(seconds)}: {_who(oldest)}: {_query(oldest)!r}")
            worst = "error" if "error" in (worst, severity) else severity
    result.figures["longest_transaction_seconds"] = longest
    hidden = sum(1 for r in sessions if not r["visible"])
    note = f"; {hidden} sessions of other roles not visible (grant pg_monitor)" if hidden else ""
    if result.terminated:
        metadata["terminated"] = "; ".join(result.terminated)
        note += f"; terminated {len(result.terminated)} idle in transaction"
    if worst is None and hidden:  # a hidden session may be the one idling in a transaction: no pass while blind
        return Verdict.warn(_blind(hidden) + note, metadata)
    return _verdict(
        worst,
        "; ".join(problems) + note,
        f"{len(sessions)} sessions, the longest transaction {_duration(longest)}" + note,
        metadata,
    )


def _blind(hidden: int) -> str:
    return f"cannot see {hidden} sessions of other roles (grant pg_monitor): not judged"


def _hidden_sessions(conn: Connection) -> int:
    """Client sessions of other roles whose state this role may not read (no pg_monitor)."""
    row = conn.execute(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type IS NULL AND datname IS NOT NULL"
    ).fetchone()
    return int(row["n"]) if row else 0


def _blocked(conn: Connection, settings: HealthSettings, version: int) -> Verdict:
    query = read_sql("health_blocked.sql")
    if version < 140000:  # pg_locks.waitstart is new in 14: older servers give the state's age
        query = query.replace("COALESCE(w.waitstart, a.state_change)", "a.state_change").replace(
            "min(l.waitstart)", "NULL::timestamptz"
        )
    rows = conn.execute(query).fetchall()
    waiting = [r for r in rows if (r["waiting_seconds"] or 0) >= settings.blocked_warn.seconds]
    longest = max((r["waiting_seconds"] or 0 for r in rows), default=0.0)
    severity = _severity(longest, settings.blocked_warn.seconds, settings.blocked_error.seconds)
    described = [
        f"{_who(r)} waits {_duration(r['waiting_seconds'] or 0)} on a lock, blocked by "
        f"{r['blocked_by'] or 'a session that has since ended'}: {_query(r)!r}"
        for r in sorted(waiting, key=lambda r: -(r["waiting_seconds"] or 0))[:5]
    ]
    hidden = _hidden_sessions(conn)
    if severity is None and hidden:  # a hidden session may be waiting (or blocking): no pass while blind
        return Verdict.warn(_blind(hidden), {"waiting": len(rows), "hidden_sessions": hidden})
    return _verdict(
        severity,
        f"{len(waiting)} sessions blocked: " + "; ".join(described),
        f"{len(rows)} sessions waiting on a lock" + (f", the longest {_duration(longest)}" if rows else ""),
        {"waiting": len(rows), "blocked_over_threshold": len(waiting), "longest_wait_seconds": round(longest, 1)},
    )


def _sequences(conn: Connection, settings: HealthSettings, result: Probe) -> Verdict:
    rows = _rows(conn, "health_sequences.sql")
    measured, unreadable = [], []
    for row in rows:
        name = f"{row['sequence_schema']}.{row['sequence_name']}"
        if not row["readable"]:
            unreadable.append(name)
            continue
        column = f"{row['table_schema']}.{row['table_name']}.{row['column_name']}" if row["column_name"] else None
        ascending = row["increment"] > 0
        limit = row["sequence_max"] if ascending else -row["sequence_min"]
        type_max = TYPE_MAX.get(row["column_type"] or "")
        if type_max is not None:
            limit = min(limit, type_max)
        value = row["last_value"]
        used = 0.0 if value is None else (value if ascending else -value) / limit
        measured.append((used, column or name, value, limit, row["column_type"]))
    measured.sort(key=lambda m: -m[0])
    highest = measured[0][0] if measured else 0.0
    result.figures["sequence_max_used_ratio"] = highest
    severity = _severity(highest, settings.sequence_warn_ratio, settings.sequence_error_ratio)
    over = [m for m in measured if m[0] >= settings.sequence_warn_ratio]
    described = [
        f"{what} at {value:,} of {limit:,} ({used:.1%}{f', {kind}' if kind else ''})"
        for used, what, value, limit, kind in over[:5]
    ]
    note = f"; {len(unreadable)} not readable by this role: {', '.join(unreadable[:3])}" if unreadable else ""
    metadata = {"sequences": len(measured), "highest_used_ratio": round(highest, 4)}
    if measured:
        metadata["highest"] = measured[0][1]
    passing = (
        f"{len(measured)} sequences, the fullest {measured[0][1]} at {highest:.1%}" if measured else "no sequences"
    )
    if severity is None and unreadable:  # a sequence we cannot read may be the one about to overflow
        return Verdict.warn(passing + note, metadata)
    return _verdict(severity, "; ".join(described) + note, passing + note, metadata)


def _wraparound(conn: Connection, db: DatabaseConfig, result: Probe) -> Verdict:
    row = conn.execute(
        "SELECT age(datfrozenxid)::bigint AS xid_age, mxid_age(datminmxid)::bigint AS mxid_age"
        " FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    result.figures["xid_age"] = row["xid_age"]
    warn, error = db.vacuum.xid_age_warn, db.vacuum.xid_age_error
    oldest = max(row["xid_age"], row["mxid_age"])
    severity = _severity(oldest, warn, error)
    text = f"transaction-ID age {row['xid_age']:,}, multixact age {row['mxid_age']:,}"
    return _verdict(
        severity,
        f"{text}: over {warn:,} / {error:,} (vacuum.xid_age_warn / xid_age_error); VACUUM FREEZE is due",
        text,
        {"xid_age": row["xid_age"], "mxid_age": row["mxid_age"]},
    )


def _replication(conn: Connection, settings: HealthSettings) -> Verdict:
    slots = _rows(conn, "health_replication.sql")
    replicas = _rows(conn, "health_replicas.sql")
    if not slots and not replicas:
        return Verdict.ok("no replication slots or standbys", {"slots": 0, "standbys": 0})
    problems, worst = [], None

    def worse(severity: str | None) -> None:
        nonlocal worst
        if severity:
            worst = "error" if "error" in (worst, severity) else severity

    for slot in slots:
        retained = slot["retained_bytes"] or 0
        severity = _severity(retained, settings.slot_retained_warn, settings.slot_retained_error)
        if not slot["active"]:
            severity = severity or "warning"
        if severity:
            state = "inactive" if not slot["active"] else "active"
            problems.append(f"slot {slot['slot_name']} ({state}) retains {format_bytes(int(retained))} of WAL")
            worse(severity)
    for replica in replicas:
        seconds = replica["lag_seconds"] or 0
        severity = _severity(seconds, settings.replica_lag_warn.seconds, settings.replica_lag_error.seconds)
        if severity:
            lag_bytes = format_bytes(int(replica["lag_bytes"] or 0))
            who = replica["application_name"] or replica["client"] or "?"
            problems.append(f"standby {who} is {_duration(seconds)} ({lag_bytes}) behind")
            worse(severity)
    metadata = {
        "slots": len(slots),
        "inactive_slots": sum(1 for s in slots if not s["active"]),
        "standbys": len(replicas),
        "most_retained_bytes": int(max((s["retained_bytes"] or 0 for s in slots), default=0)),
        "longest_lag_seconds": round(max((r["lag_seconds"] or 0 for r in replicas), default=0), 1),
    }
    return _verdict(worst, "; ".join(problems), f"{len(slots)} slots, {len(replicas)} standbys: all current", metadata)


def _prepared(conn: Connection, settings: HealthSettings) -> Verdict:
    rows = conn.execute(
        "SELECT gid, owner, extract(epoch FROM now() - prepared)::float8 AS seconds"
        " FROM pg_prepared_xacts WHERE database = current_database() ORDER BY prepared"
    ).fetchall()
    oldest = rows[0]["seconds"] if rows else 0.0
    severity = _severity(oldest, settings.prepared_xact_warn.seconds, settings.prepared_xact_error.seconds)
    old = [r for r in rows if r["seconds"] >= settings.prepared_xact_warn.seconds]
    described = [f"{r['gid']!r} (owner {r['owner']}) prepared {_duration(r['seconds'])} ago" for r in old[:5]]
    return _verdict(
        severity,
        f"{len(old)} prepared transactions left open (they hold locks and vacuum's horizon): " + "; ".join(described),
        f"{len(rows)} prepared transactions",
        {"prepared": len(rows), "oldest_seconds": round(oldest, 1)},
    )


def _cache_hit(conn: Connection, settings: HealthSettings, previous: Counters | None, result: Probe) -> Verdict:
    row = conn.execute(
        "SELECT blks_hit, blks_read, stats_reset::text AS stats_reset"
        " FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    now = Counters(int(row["blks_hit"]), int(row["blks_read"]), row["stats_reset"])
    result.counters = now
    counters = now.to_metadata()
    if previous is None or previous.stats_reset != now.stats_reset or now.blks_hit < previous.blks_hit:
        return Verdict.ok("first probe since the statistics were (re)set: the next one measures", counters)
    hits, reads = now.blks_hit - previous.blks_hit, now.blks_read - previous.blks_read
    if hits + reads == 0:
        return Verdict.ok("no blocks read since the previous probe", {"blocks": 0, **counters})
    ratio = hits / (hits + reads)
    result.figures["cache_hit_ratio"] = ratio
    metadata = {"ratio": round(ratio, 4), "blocks": hits + reads, **counters}
    text = f"{ratio:.1%} of {hits + reads:,} block reads since the previous probe came from the cache"
    if ratio < settings.cache_hit_min:
        return Verdict.warn(f"{text} (below {settings.cache_hit_min:.0%})", metadata)
    return Verdict.ok(text, metadata)


def _volume(name: str, path: Path | None, settings: HealthSettings, result: Probe) -> Verdict:
    if path is None:
        return Verdict.ok("no local backup directory")
    try:
        stats = os.statvfs(path)
    except OSError as exc:
        return Verdict.fail(f"cannot read the free space of {path}: {exc.strerror}")
    free = stats.f_bavail * stats.f_frsize
    total = stats.f_blocks * stats.f_frsize
    ratio = free / total if total else 0.0
    result.figures[f"{name}_free_bytes"] = free
    severity = _severity(1 - ratio, 1 - settings.volume_warn_free_ratio, 1 - settings.volume_error_free_ratio)
    if free < settings.volume_min_free:
        severity = "error"
    text = f"{path}: {format_bytes(free)} free of {format_bytes(total)} ({ratio:.0%})"
    return _verdict(
        severity,
        f"{text}: under {settings.volume_warn_free_ratio:.0%} / {settings.volume_error_free_ratio:.0%} free "
        f"or {format_bytes(settings.volume_min_free)}",
        text,
        {"free_bytes": free, "total_bytes": total, "free_ratio": round(ratio, 4)},
    )
