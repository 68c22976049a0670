"""Archival against real PostgreSQL: exactly the selected rows move, with their children; nothing
is lost across a crash, a dry run, concurrent inserts, or a row removed behind our back."""

import threading

import dagster as dg
import pytest

from ops_pipelines.adapters.postgres import connect
from ops_pipelines.core.archive import ArchiveError, run_archive, verify_archive
from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines_tests.helpers import make_config

SELECTED = "status = 'completed' AND completed_at < now() - interval '365 days'"


def rule_config(tmp_path, erp_db, destination: str = "{schema: archive}", **extra):
    extra = {"batch_size": 300, **extra}
    lines = "\n".join(f"    {k}: {v}" for k, v in extra.items())
    text = (
        "archive:\n"
        "  - name: completed_orders\n"
        "    table: public.orders\n"
        "    age_column: completed_at\n"
        "    older_than: 365 days\n"
        "    status_column: status\n"
        "    status_in: [completed]\n"
        "    children: [{table: public.order_lines, fk: order_id}]\n"
        f"    destination: {destination}\n" + lines + "\n"
    )
    config = make_config(tmp_path, {"erp": erp_db}, text)
    return config, config.databases[0], config.databases[0].archive[0]


def counts(dsn: str, schema: str = "public") -> dict[str, int]:
    with connect(dsn) as conn:
        return {
            "orders": conn.execute(f"SELECT count(*) AS n FROM {schema}.orders").fetchone()["n"],
            "order_lines": conn.execute(f"SELECT count(*) AS n FROM {schema}.order_lines").fetchone()["n"],
        }


def expected(dsn: str) -> dict[str, int]:
    with connect(dsn) as conn:
        orders = conn.execute(f"SELECT count(*) AS n FROM orders WHERE {SELECTED}").fetchone()["n"]
        lines = conn.execute(
            f"SELECT count(*) AS n FROM order_lines WHERE order_id IN (SELECT id FROM orders WHERE {SELECTED})"
        ).fetchone()["n"]
    return {"orders": orders, "order_lines": lines}


def test_same_database_moves_exactly_the_selected_rows_with_children(erp_db, tmp_path):
    config, db, rule = rule_config(tmp_path, erp_db)
    before, moving = counts(erp_db), expected(erp_db)
    assert moving["orders"] > 500
    run = run_archive(db, rule)
    assert run.consistent and run.batches >= moving["orders"] // 300
    assert run.tables["public.orders"].removed == moving["orders"]
    assert run.tables["public.order_lines"].removed == moving["order_lines"]
    assert counts(erp_db, "archive") == moving
    assert counts(erp_db) == {k: before[k] - moving[k] for k in before}
    assert expected(erp_db) == {"orders": 0, "order_lines": 0}
    assert verify_archive(db, rule).passed
    again = run_archive(db, rule)  # nothing left to move
    assert again.parent_rows == 0 and verify_archive(db, rule).passed


def test_dry_run_counts_and_changes_nothing(erp_db, tmp_path):
    config, db, rule = rule_config(tmp_path, erp_db)
    before, moving = counts(erp_db), expected(erp_db)
    run = run_archive(db, rule, dry_run=True)
    assert run.would_move == {"public.orders": moving["orders"], "public.order_lines": moving["order_lines"]}
    assert counts(erp_db) == before
    with connect(erp_db) as conn:
        assert conn.execute("SELECT to_regnamespace('archive') AS s").fetchone()["s"] is None


def test_max_rows_caps_a_run(erp_db, tmp_path):
    config, db, rule = rule_config(tmp_path, erp_db, max_rows=450)
    run = run_archive(db, rule)
    assert run.parent_rows == 450 and run.batches == 2


def test_cross_database_survives_a_crash_between_copy_and_delete(erp_db, empty_db, tmp_path):
    destination = f"{{dsn: '{empty_db}', schema: erp_archive}}"
    config, db, rule = rule_config(tmp_path, erp_db, destination)
    before, moving = counts(erp_db), expected(erp_db)

    def crash() -> None:
        raise KeyboardInterrupt("killed between the archive's commit and the source's")

    with pytest.raises(KeyboardInterrupt):
        run_archive(db, rule, after_copy=crash)
    assert counts(erp_db) == before  # the source transaction died: nothing deleted
    copied = counts(empty_db, "erp_archive")
    assert 0 < copied["orders"] <= 300  # the first batch is already in the archive

    run = run_archive(db, rule)
    assert run.consistent
    assert counts(empty_db, "erp_archive") == moving  # every row exactly once
    assert counts(erp_db) == {k: before[k] - moving[k] for k in before}
    assert verify_archive(db, rule).passed


def test_concurrent_inserts_are_not_lost(erp_db, tmp_path):
    config, db, rule = rule_config(tmp_path, erp_db, batch_size=100)
    before = counts(erp_db)
    stop, inserted = threading.Event(), []

    def insert_orders() -> None:
        with connect(erp_db, autocommit=True) as conn:
            while not stop.is_set():
                with conn.transaction():  # an order and its line, as the ERP writes them
                    row = conn.execute(
                        "INSERT INTO orders (customer_id, status, created_at, completed_at)"
                        " VALUES (1, 'completed', now() - interval '3 years', now() - interval '2 years') RETURNING id"
                    ).fetchone()
                    conn.execute(
                        "INSERT INTO order_lines (order_id, line_no, material_id, quantity, unit_price)"
                        " VALUES (%s, 1, 1, 1, 1)",
                        (row["id"],),
                    )
                inserted.append(row["id"])

    writer = threading.Thread(target=insert_orders)
    writer.start()
    try:
        run = run_archive(db, rule)
    finally:
        stop.set()
        writer.join()
    assert run.consistent and inserted
    source, archived = counts(erp_db), counts(erp_db, "archive")
    assert source["orders"] + archived["orders"] == before["orders"] + len(inserted)
    assert source["order_lines"] + archived["order_lines"] == before["order_lines"] + len(inserted)
    with connect(erp_db) as conn:
        assert conn.execute("SELECT count(*) AS n FROM orders JOIN archive.orders USING (id)").fetchone()["n"] == 0


def test_the_check_fails_when_an_archived_row_disappears(erp_db, tmp_path):
    config, db, rule = rule_config(tmp_path, erp_db)
    run_archive(db, rule)
    with connect(erp_db, autocommit=True) as conn:
        conn.execute("DELETE FROM archive.order_lines WHERE id = (SELECT min(id) FROM archive.order_lines)")
    verdict = verify_archive(db, rule)
    assert not verdict.passed and "archive.order_lines holds" in verdict.description


@pytest.mark.parametrize(
    ("rule_text", "message"),
    [
        (
            "table: public.ordrs, age_column: completed_at",
            "archive rule completed_orders: table public.ordrs does not exist",
        ),
        (
            "table: public.orders, age_column: closed_at",
            "archive rule completed_orders: age_column closed_at is not a column of public.orders",
        ),
        (
            "table: public.orders, age_column: completed_at, children: [{table: public.lots, fk: material_id}]",
            "archive rule completed_orders: children[0]: public.lots(material_id) has no foreign key to public.orders",
        ),
    ],
)
def test_bad_rules_fail_before_any_row_moves(erp_db, tmp_path, rule_text, message):
    config = make_config(
        tmp_path, {"erp": erp_db}, f"archive:\n  - {{name: completed_orders, older_than: 365 days, {rule_text}}}\n"
    )
    before = counts(erp_db)
    with pytest.raises(ArchiveError) as info:
        run_archive(config.databases[0], config.databases[0].archive[0])
    assert str(info.value) == message
    assert counts(erp_db) == before


def test_an_archive_table_with_other_columns_is_refused(erp_db, tmp_path):
    config, db, rule = rule_config(tmp_path, erp_db)
    with connect(erp_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA archive")
        conn.execute("CREATE TABLE archive.orders (id bigint PRIMARY KEY, total numeric)")
    before = counts(erp_db)
    with pytest.raises(ArchiveError, match="archive table archive.orders does not match public.orders"):
        run_archive(db, rule)
    assert counts(erp_db) == before


def test_archive_asset_and_check_in_dagster(erp_db, tmp_path):
    config, db, rule = rule_config(tmp_path, erp_db)
    defs = build_definitions(config)
    job = capability_job(defs, config, "erp", "archive")
    instance = dg.DagsterInstance.ephemeral()
    dry = job.execute_in_process(
        partition_key="erp",
        instance=instance,
        run_config={"ops": {"archive_completed_orders": {"config": {"dry_run": True}}}},
    )
    assert dry.success
    dry_metadata = instance.get_latest_materialization_event(
        dg.AssetKey("archive_completed_orders")
    ).asset_materialization.metadata
    assert dry_metadata["would_move public.orders"].value == expected(erp_db)["orders"]
    moving = expected(erp_db)
    casual = job.execute_in_process(partition_key="erp", instance=instance)  # "Materialize all": not its schedule
    assert casual.success and expected(erp_db) == moving  # nothing moved
    assert casual.get_asset_materialization_events() == [] and casual.get_asset_check_evaluations() == []
    [observation] = casual.get_asset_observation_events()
    refusal = observation.asset_observation_data.asset_observation.metadata["refused"].value
    assert refusal.startswith("archive_completed_orders of erp not run: it changes the database")
    assert "confirm: true" in refusal
    result = job.execute_in_process(
        partition_key="erp", instance=instance, tags={"dagster/schedule_name": "archive_schedule"}
    )
    assert result.success
    metadata = instance.get_latest_materialization_event(
        dg.AssetKey("archive_completed_orders")
    ).asset_materialization.metadata
    assert metadata["rows public.orders"].value == moving["orders"] and metadata["batches"].value >= 2
    assert metadata["rows_per_second"].value > 0 and metadata["longest_batch_ms"].value > 0
    assert {c.check_name: c.passed for c in result.get_asset_check_evaluations()} == {"archive_consistent": True}
    schedule = defs.resolve_schedule_def("archive_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 9 * * 1", "Asia/Ho_Chi_Minh")


def add_invoices(dsn: str, on_delete: str = "NO ACTION") -> int:
    """A table the rule does not list, referencing old completed orders. Returns how many rows."""
    with connect(dsn, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE public.invoices (id bigserial PRIMARY KEY,"
            f" order_id bigint REFERENCES public.orders (id) ON DELETE {on_delete})"
        )
        conn.execute(f"INSERT INTO public.invoices (order_id) SELECT id FROM orders WHERE {SELECTED}")
        return conn.execute("SELECT count(*) AS n FROM public.invoices").fetchone()["n"]


@pytest.mark.parametrize("on_delete", ["NO ACTION", "CASCADE"])
@pytest.mark.parametrize("across", [False, True], ids=["same database", "another database"])
def test_an_unlisted_referencing_table_is_refused_before_any_row_moves(erp_db, empty_db, tmp_path, on_delete, across):
    """Across databases, the probe saw 2,000 orders committed in the archive and then the source
    delete fail on invoices' foreign key, every run. With CASCADE the invoices would be deleted
    without being archived. Both are refused before anything moves."""
    invoices = add_invoices(erp_db, on_delete)
    destination = f"{{dsn: '{empty_db}', schema: erp_archive}}" if across else "{schema: archive}"
    config, db, rule = rule_config(tmp_path, erp_db, destination)
    before = counts(erp_db)
    with pytest.raises(ArchiveError) as info:
        run_archive(db, rule)
    assert str(info.value).startswith(
        f"archive rule completed_orders: foreign key invoices_order_id_fkey on public.invoices(order_id) references "
        f"public.orders (ON DELETE {on_delete}), and public.invoices is not in children"
    )
    assert counts(erp_db) == before
    with connect(empty_db if across else erp_db) as conn:  # no archive table was even created
        schema = "erp_archive" if across else "archive"
        assert conn.execute("SELECT to_regclass(%s) AS t", (f"{schema}.orders",)).fetchone()["t"] is None
    with connect(erp_db) as conn:
        assert conn.execute("SELECT count(*) AS n FROM public.invoices").fetchone()["n"] == invoices


def test_a_referencing_table_the_rule_accepts_keeps_its_rows_and_its_on_delete_rule(erp_db, tmp_path):
    with connect(erp_db, autocommit=True) as conn:  # referencing only orders the rule does not select
        conn.execute(
            "CREATE TABLE public.order_notes (id bigserial PRIMARY KEY, order_id bigint REFERENCES public.orders (id))"
        )
        conn.execute(f"INSERT INTO public.order_notes (order_id) SELECT id FROM orders WHERE NOT ({SELECTED}) LIMIT 50")
    config, db, rule = rule_config(tmp_path, erp_db, allow_references_from="[public.order_notes]")
    moving = expected(erp_db)
    run = run_archive(db, rule)
    assert run.consistent and counts(erp_db, "archive") == moving
    with connect(erp_db) as conn:
        assert conn.execute("SELECT count(*) AS n FROM public.order_notes").fetchone()["n"] == 50


def test_a_failing_source_statement_names_the_source_not_the_archive(erp_db, empty_db, tmp_path):
    from ops_pipelines.adapters.postgres import describe_dsn
    from ops_pipelines.errors import DatabaseError

    add_invoices(erp_db)
    destination = f"{{dsn: '{empty_db}', schema: erp_archive}}"
    # Accepting the reference means its NO ACTION rule applies: the source delete fails, after the copy.
    config, db, rule = rule_config(tmp_path, erp_db, destination, allow_references_from="[public.invoices]")
    with pytest.raises(DatabaseError) as info:
        run_archive(db, rule)
    assert str(info.value).startswith(describe_dsn(erp_db) + ": ")
    assert "invoices_order_id_fkey" in str(info.value)


@pytest.mark.parametrize("across", [False, True], ids=["same database", "destination.dsn naming the source"])
def test_an_archive_table_that_is_its_own_source_is_refused(erp_db, tmp_path, across):
    """M2: with destination schema = the table's schema the run "archived" 2,001 rows every time and
    moved none. Odd names (mixed case, a quote) as in the report."""
    with connect(erp_db, autocommit=True) as conn:
        conn.execute('CREATE SCHEMA "Mixed"')
        conn.execute('CREATE TABLE "Mixed"."Ord""ers" (id int PRIMARY KEY, done_at timestamptz NOT NULL)')
        conn.execute(
            """INSERT INTO "Mixed"."Ord""ers" SELECT i, now() - interval '2 years' FROM generate_series(1, 3000) i"""
        )
    destination = f'{{schema: Mixed, dsn: "{erp_db}"}}' if across else "{schema: Mixed}"
    config = make_config(
        tmp_path,
        {"erp": erp_db},
        'archive:\n  - name: odd\n    table: \'"Mixed"."Ord""ers"\'\n    age_column: done_at\n'
        f"    older_than: 365 days\n    destination: {destination}\n",
    )
    with pytest.raises(ArchiveError, match=r'the archive table of Mixed.Ord"ers .* is Mixed.Ord"ers itself'):
        run_archive(config.databases[0], config.databases[0].archive[0])
    with connect(erp_db) as conn:
        assert conn.execute('SELECT count(*) AS n FROM "Mixed"."Ord""ers"').fetchone()["n"] == 3000
        ledger = conn.execute("SELECT count(*) AS n FROM pg_tables WHERE tablename = 'ops_archive_ledger'").fetchone()
        assert ledger["n"] == 0  # refused before anything was created
