"""How long loading `defs` takes as the number of configured databases grows.

Target (issue 2): a config of 50 databases loads in under 3 seconds on the project machine.
Measured in-process (parse the YAML, build every factory, resolve the asset graph and the
repository, which is what a code server does on load) and cold (a fresh `python` that imports
Dagster and the code location, as `dagster-webserver` would when it starts the code server).
The baseline is the same load with one database, measured in the same run.

    .venv/bin/python bench/bench_defs_load.py [--databases 50] [--repeat 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def config_text(databases: int) -> str:
    lines = [
        "backup_store: {local_dir: /tmp/ops_bench_backups}",
        "metrics: {dsn: 'host=metrics dbname=ops_metrics', textfile_path: /tmp/ops_bench_textfile/ops.prom}",
        "alerts: {webhook_url: 'https://hooks.example/services/T0/B0/x'}",
        "databases:",
    ]
    for i in range(databases):
        lines += [
            f"  - name: erp_{i:03d}",
            f'    dsn: "host=db{i}.internal dbname=erp user=ops_pipelines"',
            "    archive:",
            "      - {name: completed_orders, table: public.orders, age_column: completed_at, older_than: 365 days,",
            "         children: [{table: public.order_lines, fk: order_id}]}",
        ]
    return "\n".join(lines) + "\n"


def load_in_process(text: str) -> float:
    from ops_pipelines.config import parse_config
    from ops_pipelines.definitions import build_definitions

    started = time.perf_counter()
    definitions = build_definitions(parse_config(text, {}))
    definitions.resolve_asset_graph()
    definitions.get_repository_def().load_all_definitions()
    return time.perf_counter() - started


def load_cold(path: Path) -> float:
    code = (
        "import time; t = time.perf_counter(); from ops_pipelines.definitions import defs; "
        "d = defs(); d.get_repository_def().load_all_definitions(); print(time.perf_counter() - t)"
    )
    env = {**os.environ, "OPS_PIPELINES_CONFIG": str(path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    load_in_process(config_text(1))  # warm imports so the first measurement is not an outlier
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in (1, args.databases):
            text = config_text(count)
            path = Path(tmp) / f"config_{count}.yaml"
            path.write_text(text)
            warm = statistics.median(load_in_process(text) for _ in range(args.repeat))
            cold = statistics.median(load_cold(path) for _ in range(args.repeat))
            rows.append((count, warm, cold))
    print(f"| databases | in-process load (median of {args.repeat}) | cold import + load (median of {args.repeat}) |")
    print("|---:|---:|---:|")
    for count, warm, cold in rows:
        print(f"| {count} | {warm:.3f} s | {cold:.3f} s |")
    base, big = rows[0], rows[-1]
    print(f"\nratio {big[0]} vs {base[0]} databases: in-process {big[1] / base[1]:.1f}x, cold {big[2] / base[2]:.2f}x")
    print(f"target: {big[0]} databases under 3 s cold: {'met' if big[2] < 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
