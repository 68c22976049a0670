"""One tick of the missing-backup sensor over many databases with long backup histories.

Target (issue 3): 50 databases with 1,000 backups each, one tick well under a second locally.
The sensor only lists directories (no manifest or dump is opened). Baseline in the same run:
one database with one backup.

    .venv/bin/python bench/bench_sensor.py [--databases 50] [--backups 1000] [--repeat 5]
"""

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg

from ops_pipelines.config import parse_config
from ops_pipelines.core.backup_catalog import stamp_for
from ops_pipelines.definitions import build_definitions


def make_store(root: Path, databases: int, backups: int) -> str:
    now = dt.datetime.now(dt.UTC)
    lines = [f"backup_store: {{local_dir: {root}}}", "databases:"]
    for d in range(databases):
        name = f"erp_{d:03d}"
        lines.append(f"  - {{name: {name}, dsn: 'host=db{d} dbname=erp'}}")
        directory = root / name
        directory.mkdir(parents=True)
        # every database but the last is fresh; the last has a gap, so the tick requests one run
        newest = now - dt.timedelta(hours=1 if d < databases - 1 else 40)
        for b in range(backups):
            stamp = stamp_for(newest - dt.timedelta(days=b))
            (directory / f"{stamp}.dump.zst").touch()
            (directory / f"{stamp}.manifest.json").touch()
    return "\n".join(lines) + "\n"


def tick_seconds(config_text: str, repeat: int) -> tuple[float, int]:
    defs = build_definitions(parse_config(config_text, {}))
    sensor = defs.resolve_sensor_def("missing_backup_sensor")
    instance = dg.DagsterInstance.ephemeral()
    times, requests = [], 0
    for _ in range(repeat):
        with dg.build_sensor_context(instance=instance, definitions=defs) as context:
            started = time.perf_counter()
            results = list(sensor(context))
            times.append(time.perf_counter() - started)
        requests = sum(isinstance(r, dg.RunRequest) for r in results)
    return statistics.median(times), requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", type=int, default=50)
    parser.add_argument("--backups", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as small, tempfile.TemporaryDirectory() as big:
        base, _ = tick_seconds(make_store(Path(small), 1, 1), args.repeat)
        seconds, requests = tick_seconds(make_store(Path(big), args.databases, args.backups), args.repeat)
    print(f"| store | one tick (median of {args.repeat}) | run requests |")
    print("|---|---:|---:|")
    print(f"| 1 database x 1 backup (baseline) | {base * 1000:.1f} ms | - |")
    print(f"| {args.databases} databases x {args.backups} backups | {seconds * 1000:.1f} ms | {requests} |")
    print(f"\nratio {seconds / base:.0f}x the baseline; target well under 1 s: {'met' if seconds < 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
