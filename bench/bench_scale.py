"""Scale (issue 9): with 50 configured databases, how long loading `defs` and each sensor's tick
take. Targets: `defs` under 3 s, every sensor tick under 2 s. The sensors run against a
PostgreSQL-backed instance (as in production) holding one backup materialization per database,
and a store with 1,000 backups per database.

    .venv/bin/python bench/bench_scale.py [--databases 50] [--dsn "host=127.0.0.1 user=postgres dbname=postgres"]

Run parallelism under pools is checked for real (daemon, queued coordinator) by
ops_pipelines_tests/test_e2e_daemon.py.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
from psycopg.conninfo import conninfo_to_dict

sys.path.insert(0, str(Path(__file__).parent))
from bench_sensor import make_store  # noqa: E402

from ops_pipelines.adapters.postgres import connect  # noqa: E402
from ops_pipelines.config import parse_config  # noqa: E402
from ops_pipelines.definitions import build_definitions  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", type=int, default=50)
    parser.add_argument("--dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=postgres")
    args = parser.parse_args()
    with connect(args.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS ops_bench_instance WITH (FORCE)")
        conn.execute("CREATE DATABASE ops_bench_instance")
    server = conninfo_to_dict(args.dsn)
    os.environ.update(
        {
            "DAGSTER_PG_HOST": server.get("host", "127.0.0.1"),
            "DAGSTER_PG_PORT": str(server.get("port", 5432)),
            "DAGSTER_PG_USER": server.get("user", "postgres"),
            "DAGSTER_PG_PASSWORD": server.get("password", ""),
            "DAGSTER_PG_DB": "ops_bench_instance",
        }
    )
    with tempfile.TemporaryDirectory() as store, tempfile.TemporaryDirectory() as home:
        text = make_store(Path(store), args.databases, 1000)
        config_path = Path(store) / "config.yaml"
        config_path.write_text(text)
        cold = subprocess.run(
            [
                sys.executable,
                "-c",
                "import time; t = time.perf_counter(); from ops_pipelines.definitions import defs; "
                "defs().get_repository_def().load_all_definitions(); print(time.perf_counter() - t)",
            ],
            env={**os.environ, "OPS_PIPELINES_CONFIG": str(config_path)},
            capture_output=True,
            text=True,
            check=True,
        )
        load_seconds = float(cold.stdout.strip().splitlines()[-1])
        defs = build_definitions(parse_config(text, {}))
        (Path(home) / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
        with dg.DagsterInstance.from_config(home) as instance:
            for db in parse_config(text, {}).databases:  # one backup materialization each
                instance.report_runless_asset_event(
                    dg.AssetMaterialization(
                        asset_key=[db.name, "backup"],
                        metadata={"path": dg.MetadataValue.path(f"/x/{db.name}/20261122T000000Z.dump.zst")},
                    )
                )
            rows = []
            for name in ("missing_backup_sensor", "restore_after_backup_sensor"):
                sensor = defs.resolve_sensor_def(name)
                times, cursor = [], None
                for _ in range(5):
                    with dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor) as context:
                        started = time.perf_counter()
                        results = list(sensor(context))
                        times.append(time.perf_counter() - started)
                        if name == "restore_after_backup_sensor" and cursor is None:
                            first_requests = sum(isinstance(r, dg.RunRequest) for r in results)
                rows.append((name, statistics.median(times), max(times)))
    with connect(args.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS ops_bench_instance WITH (FORCE)")
    print(f"| {args.databases} databases | median | worst |\n|---|---:|---:|")
    print(f"| cold load of `defs` (fresh interpreter) | {load_seconds:.2f} s | - |")
    for name, median, worst in rows:
        print(f"| `{name}` tick (PostgreSQL-backed instance) | {median * 1000:.0f} ms | {worst * 1000:.0f} ms |")
    print(f"\nrestore sensor, first tick: {first_requests} run requests (one per database)")
    print(
        f"targets: defs < 3 s: {'met' if load_seconds < 3 else 'NOT met'}; "
        f"ticks < 2 s: {'met' if all(w < 2 for _, _, w in rows) else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
