"""Names shared by every per-database factory, so keys, groups and pools read the same everywhere."""

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg

from ops_pipelines.capability import Capability
from ops_pipelines.config import DatabaseConfig
from ops_pipelines.errors import TransientError

TRANSIENT_RETRIES = 3
TRANSIENT_WAIT_SECONDS = 120


def asset_key(db: DatabaseConfig, name: str) -> dg.AssetKey:
    """`<db>/<name>`: the database name prefixes every key, so the graph reads per database."""
    return dg.AssetKey([db.name, name])


def pool(db: DatabaseConfig) -> str:
    """The concurrency pool of a database's heavy actions (limit 1 in dagster.yaml)."""
    return f"db_{db.name}"


def database_asset(
    capability: Capability,
    db: DatabaseConfig,
    name: str,
    *,
    description: str,
    deps: tuple[str, ...] = (),
    kinds: tuple[str, ...] = ("postgres",),
    **kwargs,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """`@dg.asset` for one asset of a capability on one database: keyed `<db>/<name>`, grouped by
    database, and — when the registry marks the capability exclusive — in the database's pool of
    one, so it never overlaps other heavy work on the same database."""
    return dg.asset(
        key=asset_key(db, name),
        deps=[asset_key(db, dep) for dep in deps],
        group_name=db.name,
        kinds=set(kinds),
        pool=pool(db) if capability.exclusive else None,
        description=description,
        **kwargs,
    )


def check_result(verdict) -> dg.AssetCheckResult:
    """A `core` Verdict as a Dagster check result: failures are errors unless marked warning-only."""
    severity = dg.AssetCheckSeverity.WARN if verdict.warning_only else dg.AssetCheckSeverity.ERROR
    return dg.AssetCheckResult(
        passed=verdict.passed, severity=severity, description=verdict.description, metadata=verdict.metadata
    )


@contextlib.contextmanager
def retry_if_transient() -> Iterator[None]:
    """Around an asset's work: an unreachable server or a held lock asks Dagster to retry the step
    later (up to TRANSIENT_RETRIES times); any other failure fails the run at once."""
    try:
        yield
    except TransientError as exc:
        raise dg.RetryRequested(max_retries=TRANSIENT_RETRIES, seconds_to_wait=TRANSIENT_WAIT_SECONDS) from exc
