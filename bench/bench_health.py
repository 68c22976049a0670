"""The health probe: one database, and a sensor tick over a fleet, side by side with a baseline.

Targets (issue 18): a probe of one database takes under 200 ms on the demo database; one
`health_probe_sensor` tick probes 50 databases in under 10 s; a database that is down costs at most
its connect timeout. The first ticks record every check of every database (new states); the third
is the steady state (nothing changed, nothing recorded). Measured against the local server with a
PostgreSQL-backed Dagster instance (as deployed: dagster-postgres) in a new database; the fleet is
50 copies of a small ERP sample.
Baseline, in the same run: a bare connect + `SELECT 1` + close of the same database.

    .venv/bin/python bench/bench_health.py [--databases 50] [--repeat 20]
"""

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg
from psycopg import sql

from ops_pipelines.adapters.cluster import free_port
from ops_pipelines.adapters.postgres import connect, with_dbname
from ops_pipelines.config import parse_config
from ops_pipelines.core.health import probe
from ops_pipelines.definitions import build_definitions
from ops_pipelines.demo.generator import generate_erp_database

SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
DEMO_DB = "ops_bench_health_demo"  # the demo's scale 1
FLEET_TEMPLATE = "ops_bench_health_small"


def config_text(store: Path, databases: list[tuple[str, str]], extra: str = "") -> str:
    entries = "".join(f"  - {{name: {name}, dsn: '{dsn}'{extra}}}\n" for name, dsn in databases)
    return f"timezone: UTC\nbackup_store: {{local_dir: {store}}}\ndatabases:\n{entries}"


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> tuple[float, str, str]:
    sensor = defs.resolve_sensor_def("health_probe_sensor")
    with dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor) as context:
        started = time.perf_counter()
        result = sensor.evaluate_tick(context)
        seconds = time.perf_counter() - started
    return seconds, (result.skip_message or "")[:90], result.cursor or ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    generate_erp_database(SERVER, DEMO_DB, 1)
    generate_erp_database(SERVER, FLEET_TEMPLATE, 0.05)
    fleet = [f"ops_bench_health_{i:03}" for i in range(args.databases)]
    instance_db = f"ops_bench_{uuid.uuid4().hex[:8]}"
    with connect(SERVER, autocommit=True) as conn:
        for name in [*fleet, instance_db]:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        for name in fleet:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(*map(sql.Identifier, (name, FLEET_TEMPLATE))))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(instance_db)))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Path(tmp)
            demo = parse_config(config_text(store, [("demo", with_dbname(SERVER, DEMO_DB))]), {}).databases[0]
            baseline, probes = [], []
            previous = None
            for _ in range(args.repeat):
                started = time.perf_counter()
                with connect(demo.dsn.get_secret_value()) as conn:
                    conn.execute("SELECT 1")
                baseline.append(time.perf_counter() - started)
                result = probe(demo, store, previous)
                previous = result.counters
                probes.append(result.seconds)
            print(f"| measure (median of {args.repeat}) | time |\n|---|---:|")
            print(f"| connect + SELECT 1 + close (baseline) | {statistics.median(baseline) * 1000:.1f} ms |")
            print(f"| one probe of the demo database (11 checks) | {statistics.median(probes) * 1000:.1f} ms |")

            url = f"postgresql://postgres@127.0.0.1:5432/{instance_db}"
            with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as instance:
                rows = []
                for label, dbs in (
                    ("1 database (baseline)", fleet[:1]),
                    (f"{len(fleet)} databases", fleet),
                ):
                    config = parse_config(config_text(store, [(n, with_dbname(SERVER, n)) for n in dbs]), {})
                    defs = build_definitions(config)
                    first, note_first, cursor = tick(defs, instance, None)
                    second, _, cursor = tick(defs, instance, cursor)
                    steady, note_steady, _ = tick(defs, instance, cursor)
                    rows.append((label, first, note_first, second, steady, note_steady))
                down = [(n, with_dbname(SERVER, n)) for n in fleet] + [
                    ("down", f"host=127.0.0.1 port={free_port()} user=postgres dbname=gone")
                ]
                config = parse_config(config_text(store, down, ", timeouts: {connect: 3s}"), {})
                seconds, note, _ = tick(build_definitions(config), instance, None)
                rows.append((f"{len(fleet)} databases + 1 down (connect timeout 3 s)", seconds, note, None, None, ""))
            print("\n| sensor tick | first tick | second tick | third tick (steady) |")
            print("|---|---:|---:|---:|")
            for label, first, _, second, steady, _ in rows:
                later = [f"{t:.2f} s" if t is not None else "-" for t in (second, steady)]
                print(f"| {label} | {first:.2f} s | {later[0]} | {later[1]} |")
            for label, _, note_first, _, _, note_steady in rows:
                print(f"  {label}: {note_first} / {note_steady}")
    finally:
        with connect(SERVER, autocommit=True) as conn:
            for name in [*fleet, instance_db]:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
