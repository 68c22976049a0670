"""How long loading `defs` takes as the number of configured databases grows.

Target (the fleet issue): loading the code location for 500 databases costs at most 2x loading it
for one, each in a cold `python` process, measured side by side in one run. Measured in-process
(parse the YAML, build every asset, resolve the asset graph and the repository, which is what a
code server does on load), cold (a fresh `python` that imports Dagster and the code location, as
`dagster-webserver` would when it starts the code server; time from the import to loaded) and as
the whole process's wall time (interpreter start included). The baseline is one database.

    .venv/bin/python bench/bench_defs_load.py [--databases 1 50 200 500] [--repeat 5]
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


def load_cold(path: Path) -> tuple[float, float]:
    """(import + load inside the process, the process's whole wall time)."""
    code = (
        "import time; t = time.perf_counter(); from ops_pipelines.definitions import defs; "
        "d = defs(); d.get_repository_def().load_all_definitions(); print(time.perf_counter() - t)"
    )
    env = {**os.environ, "OPS_PIPELINES_CONFIG": str(path)}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    return float(out.stdout.strip().splitlines()[-1]), wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", type=int, nargs="+", default=[1, 50, 200, 500])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    counts = sorted({1, *args.databases})
    load_in_process(config_text(1))  # warm imports so the first measurement is not an outlier
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            text = config_text(count)
            path = Path(tmp) / f"config_{count}.yaml"
            path.write_text(text)
            warm = statistics.median(load_in_process(text) for _ in range(args.repeat))
            cold = [load_cold(path) for _ in range(args.repeat)]
            rows.append((count, warm, statistics.median(c for c, _ in cold), statistics.median(w for _, w in cold)))
    n = args.repeat
    print(f"| databases | in-process load (median of {n}) | cold import + load (median of {n}) | cold process wall |")
    print("|---:|---:|---:|---:|")
    base = rows[0]
    for count, warm, cold, wall in rows:
        print(
            f"| {count} | {warm:.3f} s | {cold:.3f} s ({cold / base[2]:.2f}x) | {wall:.3f} s ({wall / base[3]:.2f}x) |"
        )
    big = rows[-1]
    verdict = "met" if big[2] <= 2 * base[2] and big[3] <= 2 * base[3] else "NOT met"
    print(f"\ntarget: {big[0]} databases cold at most 2x one database: {verdict}")


if __name__ == "__main__":
    main()
