"""The sample ERP database carries the schema features backups and restores must meet."""

import pytest
from psycopg.conninfo import conninfo_to_dict

from ops_pipelines.adapters.postgres import connect, with_dbname
from ops_pipelines.demo.generator import generate_erp_database
from ops_pipelines.errors import OpsError
from ops_pipelines_tests.conftest import TEST_SCALE, create_database, drop_database

EXPECTED_TABLES = {
    "public.users",
    "auth.login_attempts",
    "public.materials",
    "public.stock",
    "public.lots",
    "public.customers",
    "public.orders",
    "public.order_lines",
    "public.purchase_requests",
    "public.ops_demo_meta",
}


def counts(dsn: str) -> dict[str, int]:
    with connect(dsn) as conn:
        tables = conn.execute("SELECT schemaname || '.' || relname AS name FROM pg_stat_user_tables").fetchall()
        return {
            t["name"]: conn.execute(f"SELECT count(*) AS n FROM {t['name']}").fetchone()["n"]  # names from the catalog
            for t in tables
        }


def test_tables_rows_and_history(erp_db):
    rows = counts(erp_db)
    assert set(rows) == EXPECTED_TABLES
    assert rows["public.orders"] == 20000 * TEST_SCALE
    assert rows["public.order_lines"] > 2 * rows["public.orders"]
    with connect(erp_db) as conn:
        history = conn.execute(
            "SELECT min(created_at) AS first, max(created_at) AS last,"
            " count(*) FILTER (WHERE status = 'completed' AND completed_at < now() - interval '1 year') AS archivable,"
            " count(*) FILTER (WHERE completed_at > now()) AS completed_in_future"
            " FROM orders"
        ).fetchone()
        expiring = conn.execute(
            "SELECT count(*) AS n FROM lots WHERE expires_on < now() + interval '30 days'"
        ).fetchone()
        intruders = conn.execute(
            "SELECT count(*) AS n FROM (SELECT email FROM auth.login_attempts WHERE NOT success"
            " AND attempted_at > now() - interval '7 days' GROUP BY email HAVING count(*) > 10) AS x"
        ).fetchone()
    assert (history["last"] - history["first"]).days > 4 * 365
    assert history["archivable"] > rows["public.orders"] / 2
    assert history["completed_in_future"] == 0
    assert expiring["n"] > 0
    assert intruders["n"] == 3


def test_schema_features(erp_db):
    with connect(erp_db) as conn:
        fks = conn.execute(
            "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent"
            " FROM pg_constraint WHERE contype = 'f'"
        ).fetchall()
        assert {"child": "order_lines", "parent": "orders"} in fks
        assert conn.execute("SELECT count(*) AS n FROM stock_below_reorder").fetchone()["n"] > 0
        assert conn.execute("SELECT last_value AS v FROM order_number_seq").fetchone()["v"] >= 100000
        before = conn.execute("SELECT updated_at FROM orders WHERE id = 1").fetchone()["updated_at"]
        after = conn.execute("UPDATE orders SET notes = 'x' WHERE id = 1 RETURNING updated_at").fetchone()["updated_at"]
        assert after > before  # the trigger fired
        with pytest.raises(Exception, match="violates foreign key constraint"):
            conn.execute(
                "INSERT INTO order_lines (order_id, line_no, material_id, quantity, unit_price) VALUES (-1, 1, 1, 1, 1)"
            )


def test_same_scale_gives_same_rows_and_a_rerun_reuses(pg_server):
    name = create_database(pg_server)
    drop_database(pg_server, name)  # generate_erp_database creates it itself
    try:
        first = generate_erp_database(pg_server, name, 0.05)
        first_counts = counts(with_dbname(pg_server, name))
        again = generate_erp_database(pg_server, name, 0.05)
        assert (first.reused, again.reused) == (False, True)
        with pytest.raises(OpsError, match="generated at scale 0.05, not 0.1: pass --replace"):
            generate_erp_database(pg_server, name, 0.1)
        replaced = generate_erp_database(pg_server, name, 0.05, replace=True)
        assert not replaced.reused
        assert counts(with_dbname(pg_server, name)) == first_counts
    finally:
        drop_database(pg_server, name)


def test_refuses_a_database_it_did_not_make(pg_server, empty_db):
    name = conninfo_to_dict(empty_db)["dbname"]
    with pytest.raises(OpsError, match="was not made by this generator"):
        generate_erp_database(pg_server, name, 0.05)
