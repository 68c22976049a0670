"""Small test helpers that talk to the real things."""

import subprocess
from pathlib import Path

import dagster as dg
import zstandard
from psycopg import sql

from ops_pipelines.adapters import commands
from ops_pipelines.adapters.postgres import connect
from ops_pipelines.config import OpsConfig, parse_config, parse_qualified_name


def make_config(local_dir: Path, databases: dict[str, str], extra: str = "", s3: str = "", top: str = "") -> OpsConfig:
    """`extra`: YAML under each database; `top`: top-level YAML (alerts, metrics, reports...)."""
    zone = [] if "timezone:" in top else ["timezone: Asia/Ho_Chi_Minh"]  # the tests' zone: not the machine's
    lines = [*zone, *top.splitlines(), "backup_store:", f"  local_dir: {local_dir}"]
    if s3:
        lines.append(f"  s3: {s3}")
    lines.append("databases:")
    for name, dsn in databases.items():
        lines += [f"  - name: {name}", f'    dsn: "{dsn}"']
        lines += [f"    {line}" for line in extra.splitlines() if line]
    return parse_config("\n".join(lines) + "\n", {})


def restore_dump(dump_path: Path, target_dsn: str) -> None:
    """Decompress a .dump.zst into pg_restore, into `target_dsn` (an empty database)."""
    pg_restore = commands.find_program("pg_restore")
    target = commands.tool_connection(target_dsn)
    process = subprocess.Popen(
        [pg_restore, "--no-owner", "--exit-on-error", "-d", target.dbname],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=commands.child_env(target.env),
    )
    with dump_path.open("rb") as source:
        zstandard.ZstdDecompressor().copy_stream(source, process.stdin)
    process.stdin.close()
    stderr = process.stderr.read().decode()
    assert process.wait() == 0, stderr


def row_counts(dsn: str, tables) -> dict[str, int]:
    with connect(dsn) as conn:
        result = {}
        for name in tables:
            schema, table = parse_qualified_name(name)
            query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(schema, table))
            result[name] = conn.execute(query).fetchone()["n"]
        return result


class SensorTicks:
    """Evaluates sensors as the daemon does, one tick at a time, keeping each sensor's cursor."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance = defs, instance
        self.cursors: dict[str, str | None] = {}

    def tick(self, name: str) -> str:
        """One tick of sensor `name`; returns what it said (its skip message)."""
        cursor = self.cursors.get(name)
        with dg.build_sensor_context(instance=self.instance, definitions=self.defs, cursor=cursor) as context:
            result = self.defs.resolve_sensor_def(name).evaluate_tick(context)
        self.cursors[name] = result.cursor
        return result.skip_message or ""
