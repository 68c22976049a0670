"""Generate the sample ERP database (users, orders with lines, stock, lots ...) at a scale factor.

Everything runs server-side (`generate_series`), seeded, so the same scale gives the same rows
(timestamps are relative to the day it runs). Scale 1 is about 37 MB in a few seconds, scale 50 about
1.4 GB (bench/RESULTS.md). The values look like an ERP's (vocabularies, price lists, time order), so
backup sizes measured on it mean something.

    python -m ops_pipelines.demo.generator --dsn "host=127.0.0.1 user=postgres" --db erp_demo --scale 1
"""

import argparse
import sys
import time
from dataclasses import dataclass

from psycopg import sql

from ops_pipelines.adapters.postgres import connect, one, read_sql, with_dbname
from ops_pipelines.errors import DatabaseError, OpsError

# What the data looks like; a sample made by an older version is made anew instead of reused.
DATA_VERSION = 2  # 2: ERP-like values (vocabularies, price lists, time order) for compression figures


@dataclass(frozen=True)
class GeneratedDatabase:
    dbname: str
    scale: float
    reused: bool
    seconds: float
    bytes: int


def generate_erp_database(admin_dsn: str, dbname: str, scale: float = 1.0, replace: bool = False) -> GeneratedDatabase:
    """Create `dbname` on the server of `admin_dsn` and fill it; reuse it when already generated."""
    if scale <= 0:
        raise OpsError(f"scale must be positive, got {scale}")
    started = time.monotonic()
    with connect(admin_dsn, autocommit=True, statement_timeout="10 min") as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists and not replace:
            generated = _generated(with_dbname(admin_dsn, dbname))
            if generated is None:
                raise OpsError(f"database {dbname} exists and was not made by this generator: choose another name")
            existing_scale, version = generated
            if existing_scale != scale:
                raise OpsError(
                    f"database {dbname} was generated at scale {existing_scale:g}, not {scale:g}: pass --replace"
                )
            if version == DATA_VERSION:
                return GeneratedDatabase(dbname, scale, True, time.monotonic() - started, _size(admin, dbname))
            # else: our own sample from an older generator (other data): made anew below, never reused
        if exists:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        with connect(with_dbname(admin_dsn, dbname), statement_timeout="3h", lock_timeout="1 min") as conn:
            conn.execute(read_sql("demo/erp_schema.sql"))
            conn.execute("SELECT set_config('ops_demo.scale', %s, false)", (str(scale),))
            conn.execute("SELECT set_config('ops_demo.data_version', %s, false)", (str(DATA_VERSION),))
            conn.execute(read_sql("demo/erp_data.sql"))
            conn.commit()
        with connect(with_dbname(admin_dsn, dbname), autocommit=True, statement_timeout="3h") as conn:
            conn.execute("VACUUM (ANALYZE)")  # the totals UPDATE left dead tuples; a fresh ERP has none
    except BaseException:
        # A half-filled database would be reused by the next run: remove it.
        with connect(admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        raise
    with connect(admin_dsn, autocommit=True) as admin:
        size = _size(admin, dbname)
    return GeneratedDatabase(dbname, scale, False, time.monotonic() - started, size)


def _generated(dsn: str) -> tuple[float, int] | None:
    """(scale, data version) of a sample this generator made; None: not one of ours."""
    try:
        with connect(dsn) as conn:
            columns = {
                r["column_name"]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = 'public' AND table_name = 'ops_demo_meta'"
                )
            }
            if "scale" not in columns:
                return None
            version = "data_version" if "data_version" in columns else "1"  # the first samples had no version
            row = conn.execute(
                f"SELECT scale, {version} AS version FROM public.ops_demo_meta ORDER BY generated_at DESC LIMIT 1"
            ).fetchone()
    except DatabaseError:
        return None
    return (float(row["scale"]), int(row["version"])) if row else None


def _size(conn, dbname: str) -> int:
    return one(conn.execute("SELECT pg_database_size(%s) AS bytes", (dbname,)))["bytes"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the sample ERP database.")
    parser.add_argument("--dsn", required=True, help="a libpq DSN of the server (any database), as a superuser")
    parser.add_argument("--db", default="erp_demo", help="database to create (default erp_demo)")
    parser.add_argument("--scale", type=float, default=1.0, help="1 = about 37 MB; 50 = about 1.4 GB")
    parser.add_argument("--replace", action="store_true", help="drop and regenerate an existing database")
    args = parser.parse_args(argv)
    try:
        result = generate_erp_database(args.dsn, args.db, args.scale, args.replace)
    except OpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    verb = "reused" if result.reused else "generated"
    print(f"{verb} {result.dbname} at scale {result.scale:g}: {result.bytes / 1e6:.1f} MB in {result.seconds:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
