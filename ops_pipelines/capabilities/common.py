"""What every capability's assets share: one asset per capability part, partitioned by database.

A fleet of 500 databases is 500 partitions of each asset, not 500 copies of it: the code location
loads in the same time for one database as for five hundred (bench/RESULTS.md), and the UI lists a
dozen assets, each with a partition per database. `Fleet` (capability.py) is the set of databases
one asset is built for; the asset's function reads its database from the run's partition key.
"""

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dagster as dg

from ops_pipelines.capability import Capability, Fleet
from ops_pipelines.errors import TransientError

TRANSIENT_RETRIES = 3
TRANSIENT_WAIT_SECONDS = 120
SCHEDULE_TAG = "dagster/schedule_name"  # Dagster sets it on every run a schedule launches
DELIBERATE = (
    "Destructive: it runs when launched by its schedule, or with `confirm: true` in the launchpad; a casual "
    '"Materialize all" leaves it alone and says so (run log, and an observation on this asset).'
)
RECORDS_PER_TICK = 1000  # materializations a sensor reads per tick; the rest wait for the next


def fleet_asset(
    capability: Capability,
    name: str,
    fleet: Fleet,
    *,
    description: str,
    deps: Sequence[str] = (),
    kinds: Sequence[str] = ("postgres",),
    **kwargs,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """`@dg.asset` for one asset of a capability: keyed by its name, partitioned by database, grouped
    by capability. Two heavy runs of one database never overlap: the run queue admits one run per
    partition key at a time (dagster.yaml, `tag_concurrency_limits` on `dagster/partition`)."""
    return dg.asset(
        key=dg.AssetKey(name),
        deps=[dg.AssetKey(dep) for dep in deps],
        partitions_def=fleet.partitions,
        group_name=capability.name,
        kinds=set(kinds),
        description=description + f"\n\nPartitioned by database ({len(fleet.databases)}: {fleet.describe()}).",
        **kwargs,
    )


def fleet_check(asset: str, name: str, fleet: Fleet, *, description: str, blocking: bool = False):
    """`@dg.asset_check` on one partition (database) of a fleet asset."""

    def decorate(fn: Callable[..., dg.AssetCheckResult]) -> dg.AssetChecksDefinition:
        with _partitioned_check_preview():
            return dg.asset_check(
                asset=dg.AssetKey(asset),
                name=name,
                partitions_def=fleet.partitions,
                blocking=blocking,
                description=description,
            )(fn)

    return decorate


def fleet_check_spec(asset: str, name: str, fleet: Fleet, *, description: str, blocking: bool = False):
    """An `AssetCheckSpec` evaluated inside the asset's own function, per partition."""
    with _partitioned_check_preview():
        return dg.AssetCheckSpec(
            name, asset=dg.AssetKey(asset), partitions_def=fleet.partitions, blocking=blocking, description=description
        )


@contextlib.contextmanager
def _partitioned_check_preview() -> Iterator[None]:
    # Partitioned asset checks are a preview API in Dagster 1.13 ("may change in patch releases"),
    # which is why pyproject.toml pins Dagster's exact version: the suite runs them before any upgrade.
    # The alternative, unpartitioned checks naming failing databases in metadata, would lose the
    # per-database history a DBA reads. Silence only this one warning, only here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def.*AssetCheckSpec")
        yield


class DeliberateConfig(dg.Config):
    """Launchpad config of a destructive asset (archive, maintenance window): `confirm: true` runs it
    now, outside its schedule."""

    confirm: bool = False


def refused(context: dg.AssetExecutionContext, confirm: bool, database: str) -> bool:
    """True (and said: a warning in the run's log and an observation on the asset) when a destructive
    asset was launched neither by its schedule nor with `confirm: true`. Its function then yields
    nothing: the asset is not materialized, and the rest of the run goes on."""
    if confirm or context.run.tags.get(SCHEDULE_TAG):
        return False
    asset = context.asset_key.to_user_string()
    why = (
        f"{asset} of {database} not run: it changes the database and this run was not launched by its schedule. "
        f"To run it now, launch it with `confirm: true` (launchpad: ops: {asset}: config: confirm: true)."
    )
    context.log.warning(why)
    context.log_event(
        dg.AssetObservation(context.asset_key, partition=context.partition_key, metadata={"refused": why})
    )
    return True


def check_result(verdict, check_name: str | None = None) -> dg.AssetCheckResult:
    """A `core` Verdict as a Dagster check result: failures are errors unless marked warning-only.
    `check_name`: which of the asset's checks, inside an asset that evaluates several."""
    severity = dg.AssetCheckSeverity.WARN if verdict.warning_only else dg.AssetCheckSeverity.ERROR
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=verdict.passed,
        severity=severity,
        description=verdict.description,
        metadata=verdict.metadata,
    )


@contextlib.contextmanager
def retry_if_transient() -> Iterator[None]:
    """Around an asset's work: an unreachable server or a held lock asks Dagster to retry the step
    later (up to TRANSIENT_RETRIES times); any other failure fails the run at once."""
    try:
        yield
    except TransientError as exc:
        raise dg.RetryRequested(max_retries=TRANSIENT_RETRIES, seconds_to_wait=TRANSIENT_WAIT_SECONDS) from exc
