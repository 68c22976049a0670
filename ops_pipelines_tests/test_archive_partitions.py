"""Time-series tables partitioned by month (camera counts): whole partitions older than the cutoff
move to the archive (DETACH ... CONCURRENTLY, then SET SCHEMA), are copied and dropped across
databases, or dropped by a purge; the partition straddling the cutoff goes row by row."""

import pytest

from ops_pipelines.adapters.postgres import connect
from ops_pipelines.core.archive import ArchiveError, run_archive, verify_archive
from ops_pipelines_tests.conftest import create_database, drop_database
from ops_pipelines_tests.helpers import make_config

MONTHS_BACK = 18
READINGS = f"""
CREATE TABLE public.readings (camera text NOT NULL, taken_at timestamptz NOT NULL, people int NOT NULL,
    PRIMARY KEY (camera, taken_at)) PARTITION BY RANGE (taken_at);
DO $$
DECLARE month date;
BEGIN
    FOR i IN -{MONTHS_BACK}..1 LOOP
        month := date_trunc('month', now())::date + make_interval(months => i);
        EXECUTE format('CREATE TABLE public.readings_%s PARTITION OF public.readings FOR VALUES FROM (%L) TO (%L)',
                       to_char(month, 'YYYY_MM'), month, month + interval '1 month');
    END LOOP;
END $$;
INSERT INTO public.readings
    SELECT 'cam' || c, t, (random() * 40)::int
    FROM generate_series(1, 3) AS c,
         generate_series(date_trunc('month', now()) - interval '{MONTHS_BACK} months', now(), interval '6 hours') AS t;
"""


def readings(dsn: str, schema: str = "public") -> set[tuple]:
    with connect(dsn) as conn:
        if conn.execute("SELECT to_regclass(%s) AS t", (f"{schema}.readings",)).fetchone()["t"] is None:
            return set()
        return {tuple(r.values()) for r in conn.execute(f"SELECT camera, taken_at FROM {schema}.readings")}  # noqa: S608


def archived_rows(dsn: str, schema: str) -> set[tuple]:
    """Every row in the archive schema: moved partitions are tables of their own there."""
    found = set()
    with connect(dsn) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE 'readings%%'", (schema,)
        ).fetchall()
        for t in tables:
            found |= {
                tuple(r.values())
                for r in conn.execute(f'SELECT camera, taken_at FROM {schema}."{t["tablename"]}"')  # noqa: S608
            }
    return found


def partition_rule(tmp_path, dsn: str, extra: str = "", destination: str = "{schema: archive}"):
    text = (
        "archive:\n  - name: old_readings\n    table: public.readings\n    age_column: taken_at\n"
        f"    older_than: 365 days\n    batch_size: 500\n    destination: {destination}\n{extra}"
    )
    config = make_config(tmp_path, {"erp": dsn}, text)
    return config.databases[0], config.databases[0].archive[0]


def old_rows(dsn: str) -> set[tuple]:
    with connect(dsn) as conn:
        query = "SELECT camera, taken_at FROM readings WHERE taken_at < now() - interval '365 days'"
        return {tuple(r.values()) for r in conn.execute(query)}


def test_old_partitions_move_whole_and_the_straddling_one_row_by_row(empty_db, tmp_path):
    with connect(empty_db, autocommit=True) as conn:
        conn.execute(READINGS)
    db, rule = partition_rule(tmp_path, empty_db)
    before, old = readings(empty_db), old_rows(empty_db)
    run = run_archive(db, rule)
    moved = [p for p in run.partitions if p.what.startswith("detached")]
    assert len(moved) in (5, 6)  # 18 months back, a year kept: the months entirely before the cutoff
    assert all(p.what == "detached concurrently, moved" and p.seconds < 5 for p in moved)
    straddling = run.tables["public.readings"].removed
    assert 0 < straddling <= 31 * 4 * 3  # at most one month of rows: the month the cutoff falls in, row by row
    assert sum(p.rows for p in moved) + straddling == len(old)
    assert readings(empty_db) == before - old and archived_rows(empty_db, "archive") == old
    verdict = verify_archive(db, rule)
    assert verdict.passed, verdict.description
    with connect(empty_db) as conn:  # the moved partitions are no longer partitions of the source
        left = conn.execute("SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'public.readings'::regclass")
        assert left.fetchone()["n"] == MONTHS_BACK + 2 - len(moved)
    again = run_archive(db, rule)
    assert again.partitions == [] and again.tables["public.readings"].removed == 0


def test_a_purge_drops_old_partitions_and_records_them(empty_db, tmp_path):
    with connect(empty_db, autocommit=True) as conn:
        conn.execute(READINGS)
    db, rule = partition_rule(tmp_path, empty_db, "    purge: true\n")
    before, old = readings(empty_db), old_rows(empty_db)
    run = run_archive(db, rule)
    dropped = [p for p in run.partitions if p.what == "dropped"]
    assert dropped and sum(p.rows for p in dropped) + run.tables["public.readings"].removed == len(old)
    assert readings(empty_db) == before - old and archived_rows(empty_db, "archive") == set()
    assert verify_archive(db, rule).description == f"{len(old):,} rows purged, as the ledger records; no copy is kept"


def test_across_databases_old_partitions_are_copied_verified_then_dropped_even_after_a_crash(
    empty_db, pg_server, tmp_path
):
    with connect(empty_db, autocommit=True) as conn:
        conn.execute(READINGS)
    archive_name = create_database(pg_server)
    try:
        archive_dsn = empty_db.rsplit("dbname=", 1)[0] + f"dbname={archive_name}"
        db, rule = partition_rule(tmp_path, empty_db, destination=f'{{dsn: "{archive_dsn}", schema: cold}}')
        before, old = readings(empty_db), old_rows(empty_db)

        def crash() -> None:
            raise RuntimeError("simulated crash between copy and drop")

        with pytest.raises(RuntimeError, match="simulated crash"):
            run_archive(db, rule, after_copy=crash)
        assert readings(empty_db) == before  # the first partition was copied, not dropped
        run = run_archive(db, rule)
        assert run.partitions and all(p.what == "copied, verified, dropped" for p in run.partitions)
        assert readings(empty_db) == before - old and archived_rows(archive_dsn, "cold") == old
        assert verify_archive(db, rule).passed
    finally:
        drop_database(pg_server, archive_name)


def test_a_table_partitioned_by_another_column_is_refused_before_anything_moves(empty_db, tmp_path):
    with connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE public.readings (camera text NOT NULL, taken_at timestamptz NOT NULL, people int,"
            " PRIMARY KEY (camera, taken_at)) PARTITION BY LIST (camera);"
            "CREATE TABLE public.readings_a PARTITION OF public.readings FOR VALUES IN ('a');"
            "INSERT INTO public.readings VALUES ('a', now() - interval '2 years', 1)"
        )
    db, rule = partition_rule(tmp_path, empty_db)
    with pytest.raises(ArchiveError) as refused:
        run_archive(db, rule)
    assert str(refused.value) == (
        "archive rule old_readings: table public.readings is partitioned by LIST (camera), not by range on its "
        "age_column taken_at: archive it as a plain table, or partition it by taken_at"
    )
    assert len(readings(empty_db)) == 1


def test_a_crash_between_detach_and_move_is_finished_by_the_next_run(empty_db, tmp_path):
    with connect(empty_db, autocommit=True) as conn:
        conn.execute(READINGS)
    db, rule = partition_rule(tmp_path, empty_db)
    before, old = readings(empty_db), old_rows(empty_db)

    def crash() -> None:
        raise RuntimeError("simulated crash between detach and move")

    with pytest.raises(RuntimeError, match="simulated crash"):
        run_archive(db, rule, after_copy=crash)
    # the first old partition is detached (not in readings any more) but not yet in the archive
    assert len(readings(empty_db)) < len(before) and archived_rows(empty_db, "archive") == set()
    run = run_archive(db, rule)
    assert run.partitions[0].what == "moved (detached by an interrupted run)"
    assert readings(empty_db) == before - old and archived_rows(empty_db, "archive") == old
    assert verify_archive(db, rule).passed
