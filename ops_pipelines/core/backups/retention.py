"""Which backups to keep: decided here as a pure function, applied elsewhere.

Grandfather-father-son, counted in the configured time zone: keep the newest complete backup of
each of the last `daily` days that have one, of the last `weekly` ISO weeks, and of the last
`monthly` months. Whatever the policy says, the newest complete backup and the newest backup
standing proven by a restore test (core/backups/proof.py: judged, not read from a marker's name) are kept.
A dump without a manifest is never deleted: it is reported, for a person to look at; so is an entry
stamped in the future (refused by the catalog). A manifest whose dump is gone is deleted.

The plan covers the union of every store's listing (`merge_listings`): a backup whose local copy
is gone, or whose off-site delete failed last time, is still planned for, so an off-site copy is
never orphaned. But S3 is untrusted: the local store's complete backups are planned among
themselves (`local`), so an entry seen only off-site — planted, or left by an old failure — can win
no slot from them and never causes the deletion of a local complete backup; off-site-only entries
are planned over the union, so the old ones go and a newer one (a lost local disk) stays.

Applying the plan deletes from each store what that store holds, goes on past a failed delete and
reports it.
"""

import datetime as dt
import zoneinfo
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass
from typing import Any, Literal

from ops_pipelines.config import Retention
from ops_pipelines.core.backups.catalog import BackupEntry
from ops_pipelines.errors import OpsError

Action = Literal["keep", "delete", "report"]


@dataclass(frozen=True)
class RetentionDecision:
    entry: BackupEntry
    action: Action
    reasons: tuple[str, ...]


def merge_listings(listings: list[list[BackupEntry]]) -> list[BackupEntry]:
    """One entry per stamp over several stores' listings, oldest first: a backup is complete, or
    verified, when it is so in any store; failed or refused when it is so in any."""
    merged: dict[str, BackupEntry] = {}
    for entries in listings:
        for entry in entries:
            have = merged.get(entry.stamp)
            merged[entry.stamp] = (
                entry
                if have is None
                else BackupEntry(
                    entry.database,
                    entry.stamp,
                    dump=have.dump or entry.dump,
                    manifest=have.manifest or entry.manifest,
                    verified=have.verified or entry.verified,
                    globals=have.globals or entry.globals,
                    failed=have.failed or entry.failed,
                    refused=have.refused or entry.refused,
                )
            )
    return [merged[stamp] for stamp in sorted(merged)]


def plan_retention(
    entries: list[BackupEntry],
    policy: Retention,
    timezone: str,
    *,
    proven: Collection[str] | None = None,
    local: Collection[str] | None = None,
) -> list[RetentionDecision]:
    """One decision per entry, oldest first. `entries` as `list_backups` (or `merge_listings`) returns
    them. `proven`: stamps standing proven (None: those with a pass marker and no failed one).
    `local`: stamps complete in the trusted local store (None: every entry is trusted)."""
    zone = zoneinfo.ZoneInfo(timezone)
    complete = sorted((e for e in entries if e.complete), key=lambda e: e.stamp)
    if proven is None:
        proven = {e.stamp for e in complete if e.verified and not e.failed}
    if local is None:
        reasons = _reasons(complete, policy, zone, proven)
    else:
        anchored = _reasons([e for e in complete if e.stamp in local], policy, zone, proven)
        union = _reasons(complete, policy, zone, proven)
        reasons = {stamp: anchored[stamp] if stamp in local else union[stamp] for stamp in union}

    decisions = []
    for entry in sorted(entries, key=lambda e: e.stamp):
        if entry.refused:
            decisions.append(RetentionDecision(entry, "report", (f"{entry.refused}; left in place for a person",)))
        elif entry.dump is not None and entry.manifest is None:
            decisions.append(
                RetentionDecision(entry, "report", ("dump without a manifest: incomplete or interrupted",))
            )
        elif entry.dump is None:
            decisions.append(RetentionDecision(entry, "delete", ("manifest whose dump is gone",)))
        elif reasons[entry.stamp]:
            decisions.append(RetentionDecision(entry, "keep", tuple(reasons[entry.stamp])))
        else:
            decisions.append(RetentionDecision(entry, "delete", ("outside the retention policy",)))
    return decisions


def _reasons(
    complete: list[BackupEntry], policy: Retention, zone: zoneinfo.ZoneInfo, proven: Collection[str]
) -> dict[str, list[str]]:
    """Why each of `complete` (oldest first) is kept; an empty list: it is not."""
    reasons: dict[str, list[str]] = {e.stamp: [] for e in complete}
    if complete:
        reasons[complete[-1].stamp].append("newest")
    verified = [e for e in complete if e.stamp in proven]
    if verified:
        reasons[verified[-1].stamp].append("newest proven by a restore test")

    # (period, how many to keep, the bucket a time falls in, the bucket as text); buckets are dates or tuples
    periods: list[tuple[str, int, Callable[[dt.datetime], Any], Callable[[Any], str]]] = [
        ("daily", policy.daily, lambda t: t.date(), lambda k: str(k)),
        ("weekly", policy.weekly, lambda t: t.isocalendar()[:2], lambda k: f"{k[0]}-W{k[1]:02d}"),
        ("monthly", policy.monthly, lambda t: (t.year, t.month), lambda k: f"{k[0]}-{k[1]:02d}"),
    ]
    for period, count, bucket_of, label in periods:
        buckets: list[Hashable] = []
        for entry in reversed(complete):  # newest first: the newest of each bucket wins it
            bucket = bucket_of(entry.started_at.astimezone(zone))
            if bucket in buckets:
                continue
            if len(buckets) >= count:
                break
            buckets.append(bucket)
            reasons[entry.stamp].append(f"{period} {label(bucket)}")
    return reasons


@dataclass(frozen=True)
class RetentionOutcome:
    decisions: list[RetentionDecision]
    deleted: list[str]  # URIs of the objects deleted, in every store
    failed: list[str]  # "<uri>: <cause>" of each object that could not be deleted
    freed_bytes: int


def apply_retention(decisions: list[RetentionDecision], listings: list[tuple], dry_run: bool) -> RetentionOutcome:
    """Delete what the plan says from each store that holds it; `listings`: (store, its entries),
    local first. The dump goes before its manifest: an interruption leaves a dangling manifest,
    which the next run removes, never a dump that looks complete. A failed delete is recorded and
    the rest goes on; that backup's other files in the same store stay for the next run."""
    held = [(store, {entry.stamp: entry for entry in entries}) for store, entries in listings]
    deleted: list[str] = []
    failed: list[str] = []
    freed = 0
    for decision in decisions:
        if decision.action != "delete":
            continue
        freed += decision.entry.dump.bytes if decision.entry.dump else 0
        if dry_run:
            continue
        for store, entries in held:
            entry = entries.get(decision.entry.stamp)
            for key in entry.keys if entry else []:
                try:
                    store.delete(key)
                except OpsError as exc:
                    failed.append(f"{store.uri(key)}: {exc}")
                    break
                deleted.append(store.uri(key))
    return RetentionOutcome(decisions, deleted, failed, freed)
