"""Archival of real ERP shapes: composite keys, composite foreign keys, a unique index instead of a
primary key, and three levels (order -> shipment -> shipment line), same database and across
databases, with a crash between the copy and the delete. Every row ends up exactly once."""

import pytest

from ops_pipelines.adapters.postgres import connect
from ops_pipelines.config import ConfigError, parse_config
from ops_pipelines.core.archive import ArchiveError, run_archive, verify_archive
from ops_pipelines_tests.helpers import make_config

ORDERS = 1200  # a third of them old enough
SCHEMA = """
CREATE SCHEMA sales;
CREATE TABLE sales.orders (
    region text NOT NULL, order_no int NOT NULL, closed_at timestamptz NOT NULL, note text,
    PRIMARY KEY (region, order_no));
CREATE TABLE sales.shipments (
    region text NOT NULL, order_no int NOT NULL, shipment_no int NOT NULL, carrier text,
    PRIMARY KEY (region, order_no, shipment_no),
    FOREIGN KEY (region, order_no) REFERENCES sales.orders);
CREATE TABLE sales.shipment_lines (
    region text NOT NULL, order_no int NOT NULL, shipment_no int NOT NULL, line_no int NOT NULL, qty numeric(10,2),
    PRIMARY KEY (region, order_no, shipment_no, line_no),
    FOREIGN KEY (order_no, region, shipment_no) REFERENCES sales.shipments (order_no, region, shipment_no));
INSERT INTO sales.orders
    SELECT r, n, now() - (n % 3) * interval '400 days', 'order ' || n
    FROM unnest(ARRAY['north', 'south']) AS r, generate_series(1, %(per_region)s) AS n;
INSERT INTO sales.shipments SELECT region, order_no, s, 'dhl' FROM sales.orders, generate_series(1, 2) AS s;
INSERT INTO sales.shipment_lines SELECT region, order_no, shipment_no, l, l * 1.5
    FROM sales.shipments, generate_series(1, 3) AS l;
"""
TABLES = ("orders", "shipments", "shipment_lines")
RULE = """\
archive:
  - name: old_orders
    table: sales.orders
    age_column: closed_at
    older_than: 365 days
    batch_size: 70
    children:
      - table: sales.shipments
        fk: [region, order_no]
        children:
          - {{table: sales.shipment_lines, fk: [region, order_no, shipment_no]}}
    destination: {destination}
"""


def build_sales(dsn: str) -> None:
    with connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA.replace("%(per_region)s", str(ORDERS // 2)))


def rows(dsn: str, schema: str) -> dict[str, set[tuple]]:
    with connect(dsn) as conn:
        return {
            t: {tuple(r.values()) for r in conn.execute(f"SELECT * FROM {schema}.{t}").fetchall()}  # noqa: S608
            for t in TABLES
            if conn.execute("SELECT to_regclass(%s) AS c", (f"{schema}.{t}",)).fetchone()["c"]
        }


def sales_rule(tmp_path, dsn: str, destination: str = "{schema: archive}"):
    config = make_config(tmp_path, {"erp": dsn}, RULE.format(destination=destination))
    return config.databases[0], config.databases[0].archive[0]


def assert_moved_exactly_once(before: dict, source: dict, archive: dict) -> None:
    for table in TABLES:
        assert source[table] | archive[table] == before[table], table  # nothing lost
        assert not source[table] & archive[table], table  # nothing in both places
    old = {(r, n) for r, n, closed, _ in before["orders"] if closed.year < 2026 and (n % 3) != 0}
    assert {(r, n) for r, n, *_ in archive["orders"]} == old
    assert {(r, n) for r, n, *_ in archive["shipment_lines"]} == old  # each level followed its parent


def test_three_levels_with_composite_keys_in_the_same_database(empty_db, tmp_path):
    build_sales(empty_db)
    db, rule = sales_rule(tmp_path, empty_db)
    before = rows(empty_db, "sales")
    dry = run_archive(db, rule, dry_run=True)
    assert dry.would_move == {"sales.orders": 800, "sales.shipments": 1600, "sales.shipment_lines": 4800}
    run = run_archive(db, rule)
    assert run.consistent and run.batches == -(-800 // 70)
    assert {t: f.removed for t, f in run.tables.items()} == dry.would_move
    assert_moved_exactly_once(before, rows(empty_db, "sales"), rows(empty_db, "archive"))
    verdict = verify_archive(db, rule)
    assert verdict.passed and "3 tables" in verdict.description
    with connect(empty_db, autocommit=True) as conn:  # a row removed behind our back shows
        conn.execute("DELETE FROM archive.shipment_lines WHERE line_no = 3 AND order_no = 1 AND region = 'north'")
    assert "archive.shipment_lines holds 4,798 rows" in verify_archive(db, rule).description


def test_three_levels_across_databases_survive_a_crash_between_copy_and_delete(empty_db, pg_server, tmp_path):
    from ops_pipelines_tests.conftest import create_database, drop_database

    build_sales(empty_db)
    archive_name = create_database(pg_server)
    try:
        archive_dsn = empty_db.rsplit("dbname=", 1)[0] + f"dbname={archive_name}"
        db, rule = sales_rule(tmp_path, empty_db, f'{{dsn: "{archive_dsn}", schema: sales_archive}}')
        before = rows(empty_db, "sales")
        crashes = {"left": 2}

        def crash() -> None:  # after the archive's commit, before the source's delete: twice
            if crashes["left"]:
                crashes["left"] -= 1
                raise RuntimeError("simulated crash between copy and delete")

        for _ in range(2):
            with pytest.raises(RuntimeError, match="simulated crash"):
                run_archive(db, rule, after_copy=crash)
        copied = rows(archive_dsn, "sales_archive")
        assert all(copied[t] <= before[t] for t in TABLES) and copied["shipment_lines"]  # in both places now
        run = run_archive(db, rule, after_copy=crash)
        assert run.consistent
        assert_moved_exactly_once(before, rows(empty_db, "sales"), rows(archive_dsn, "sales_archive"))
        assert verify_archive(db, rule).passed
    finally:
        drop_database(pg_server, archive_name)


def test_a_unique_not_null_index_serves_as_the_key_and_a_table_without_one_is_refused(empty_db, tmp_path):
    with connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE readings (camera text NOT NULL, taken_at timestamptz NOT NULL, people int);"
            "CREATE UNIQUE INDEX readings_camera_taken ON readings (camera, taken_at);"
            "INSERT INTO readings SELECT 'cam' || (n % 4), now() - n * interval '1 day', n"
            " FROM generate_series(1, 800) AS n;"
            "CREATE TABLE loose (taken_at timestamptz NOT NULL, people int);"
        )
    text = (
        "archive:\n"
        "  - {name: readings, table: public.readings, age_column: taken_at, older_than: 365 days, batch_size: 100}\n"
        "  - {name: loose, table: public.loose, age_column: taken_at, older_than: 365 days}\n"
    )
    config = make_config(tmp_path, {"erp": empty_db}, text)
    db = config.databases[0]
    with connect(empty_db) as conn:
        old = conn.execute("SELECT count(*) AS n FROM readings WHERE taken_at < now() - interval '365 days'")
        expected = old.fetchone()["n"]
    run = run_archive(db, db.archive[0])
    assert run.consistent and run.tables["public.readings"].removed == expected > 400
    assert verify_archive(db, db.archive[0]).passed
    with pytest.raises(ArchiveError) as refused:
        run_archive(db, db.archive[1])
    assert str(refused.value) == (
        "archive rule loose: table public.loose has no primary key and no unique index on NOT NULL columns: "
        "archival needs a key to page through the rows and to verify the archive by"
    )


@pytest.mark.parametrize(
    ("fk", "message"),
    [
        (
            "[region]",
            "archive rule old_orders: children[0]: sales.shipments(region) has no foreign key to sales.orders; its "
            "foreign keys to it: (region, order_no)",
        ),
        (
            "[order_no, region]",
            None,  # the order of the columns does not matter: the constraint's is used
        ),
    ],
)
def test_a_foreign_key_list_must_match_a_foreign_key(empty_db, tmp_path, fk, message):
    build_sales(empty_db)
    text = RULE.format(destination="{schema: archive}").replace("fk: [region, order_no]", f"fk: {fk}")
    config = make_config(tmp_path, {"erp": empty_db}, text)
    db = config.databases[0]
    if message is None:
        assert run_archive(db, db.archive[0], dry_run=True).would_move["sales.shipment_lines"] == 4800
        return
    with pytest.raises(ArchiveError) as refused:
        run_archive(db, db.archive[0])
    assert str(refused.value) == message
    assert rows(empty_db, "sales")["orders"] and len(rows(empty_db, "sales")["orders"]) == ORDERS  # nothing moved


def test_a_key_column_listed_twice_is_a_config_error(tmp_path):
    text = RULE.format(destination="{schema: archive}").replace("fk: [region, order_no]", "fk: [region, region]")
    with pytest.raises(ConfigError, match=r"children\[0\]\.fk: column region is listed twice"):
        parse_config(
            f"backup_store: {{local_dir: {tmp_path}}}\ndatabases:\n  - name: erp\n    dsn: host=x\n"
            + "".join(f"    {line}\n" for line in text.splitlines()),
            {},
        )


def test_a_purge_deletes_in_batches_and_the_ledger_keeps_the_evidence(empty_db, tmp_path):
    """Camera counts nobody needs back: a purge rule deletes them (with their children), keeps no copy,
    and records per table the count and key checksum of what it deleted."""
    build_sales(empty_db)
    purge = RULE.format(destination="{schema: ops_ledger}").replace(
        "    batch_size: 70\n", "    batch_size: 70\n    purge: true\n"
    )
    config = make_config(tmp_path, {"erp": empty_db}, purge)
    db, rule = config.databases[0], config.databases[0].archive[0]
    before = rows(empty_db, "sales")
    dry = run_archive(db, rule, dry_run=True)
    run = run_archive(db, rule)
    assert run.consistent and run.why_stopped == "done"
    assert {t: f.removed for t, f in run.tables.items()} == dry.would_move
    after = rows(empty_db, "sales")
    assert len(after["orders"]) == ORDERS - dry.would_move["sales.orders"] and after["orders"] <= before["orders"]
    assert rows(empty_db, "ops_ledger") == {}  # no copy of any table
    with connect(empty_db) as conn:
        ledger = conn.execute(
            "SELECT source_table, archive_table, sum(rows_added) AS n, sum(key_checksum) AS h"
            " FROM ops_ledger.ops_archive_ledger GROUP BY 1, 2 ORDER BY 1"
        ).fetchall()
        gone = conn.execute(
            "SELECT sum(hashtextextended(ROW(region, order_no)::text, 0)) AS h FROM (VALUES "
            + ", ".join(f"('{r}', {n})" for r, n, *_ in before["orders"] - after["orders"])
            + ") AS k(region, order_no)"
        ).fetchone()["h"]
    assert [(r["source_table"], r["archive_table"], int(r["n"])) for r in ledger] == [
        ("sales.orders", "(purged)", 800),
        ("sales.shipment_lines", "(purged)", 4800),
        ("sales.shipments", "(purged)", 1600),
    ]
    assert int(ledger[0]["h"]) == int(gone)  # the evidence is the checksum of exactly the deleted keys
    verdict = verify_archive(db, rule)
    assert verdict.passed and verdict.description == "7,200 rows purged, as the ledger records; no copy is kept"


def test_a_purge_cannot_be_configured_with_an_archive_database(tmp_path):
    text = RULE.format(destination='{dsn: "host=archive", schema: a}').replace(
        "    batch_size: 70\n", "    batch_size: 70\n    purge: true\n"
    )
    with pytest.raises(ConfigError, match="purge: true keeps no copy, so destination.dsn would never be used"):
        make_config(tmp_path, {"erp": "host=x"}, text)


def test_max_rows_and_max_runtime_stop_between_batches_and_say_why(empty_db, tmp_path):
    build_sales(empty_db)

    def rule_with(settings: str):
        text = RULE.format(destination="{schema: archive}").replace("    batch_size: 70\n", settings)
        config = make_config(tmp_path, {"erp": empty_db}, text)
        return config.databases[0], config.databases[0].archive[0]

    capped = run_archive(*rule_with("    batch_size: 70\n    max_rows: 5\n"))
    assert capped.why_stopped == "max_rows" and capped.tables["sales.orders"].removed == 5

    def slow_batches(message: str) -> None:  # each batch then takes about 0.3 s: 1 s runs out after a few
        if message.startswith("batch "):
            with connect(empty_db) as conn:
                conn.execute("SELECT pg_sleep(0.3)")

    db, rule = rule_with("    batch_size: 10\n    max_runtime: 1s\n")
    first = run_archive(db, rule, log=slow_batches)
    assert first.why_stopped == "max_runtime" and first.consistent
    assert 2 <= first.batches <= 8 and first.tables["sales.orders"].removed == first.batches * 10
    rest = run_archive(db, rule)
    assert rest.why_stopped == "done" and rest.consistent
    assert 5 + first.tables["sales.orders"].removed + rest.tables["sales.orders"].removed == 800
    assert verify_archive(db, rule).passed
