"""Vacuum/analyze, reindex and window work against real PostgreSQL, inside safe limits."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
import yaml

from ops_pipelines.adapters.postgres import connect
from ops_pipelines.config import VacuumSettings
from ops_pipelines.core.maintenance.reindex import invalid_index_verdict, run_reindex
from ops_pipelines.core.maintenance.vacuum import TableFigures, plan_vacuum, run_vacuum, xid_age_verdict
from ops_pipelines.core.maintenance.window import window_state
from ops_pipelines.definitions import build_definitions, capability_job
from ops_pipelines_tests.helpers import make_config

REPO = Path(__file__).resolve().parents[1]
QUOTED = '"Sales Data"."Order Lines"'


def figures(name: str, live: int, dead: int, modified: int = 0, xid_age: int = 1000) -> TableFigures:
    return TableFigures("public", name, live, dead, modified, live, xid_age, 0)


def test_plan_vacuum_chooses_by_thresholds_and_says_why():
    settings = VacuumSettings(dead_ratio=0.2, min_dead_tuples=1000, stale_analyze_ratio=0.1, xid_age_warn=10**6)
    plan = plan_vacuum(
        [
            figures("bloated", 10_000, 5_000),
            figures("few_dead", 100, 900),  # 90% dead but under the absolute minimum
            figures("big_low_ratio", 1_000_000, 50_000),  # over the minimum, under the ratio
            figures("stale", 10_000, 0, modified=2_000),
            figures("old", 10, 0, xid_age=2 * 10**6),
            figures("healthy", 10_000, 10, modified=10),
        ],
        settings,
    )
    by_name = {item.table.table_name: item for item in plan}
    assert list(by_name) == ["old", "bloated", "stale"]  # freeze first, then most dead tuples
    assert by_name["old"].freeze and not by_name["bloated"].freeze
    assert by_name["bloated"].reasons[0] == "5,000 dead tuples (33%)"
    assert "modified since the last analyze" in by_name["stale"].reasons[0]


def prepare(dsn: str) -> None:
    """A quoted, mixed-case table beside the ERP ones; autovacuum off so it cannot race the test."""
    with connect(dsn, autocommit=True) as conn:
        conn.execute('CREATE SCHEMA "Sales Data"')
        conn.execute(f"CREATE TABLE {QUOTED} (id bigint PRIMARY KEY, note text)")
        conn.execute(f"INSERT INTO {QUOTED} SELECT g, repeat('x', 200) FROM generate_series(1, 20000) AS g")
        for table in ("auth.login_attempts", "public.orders", "public.order_lines", QUOTED):
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        conn.execute("ANALYZE")


def churn(dsn: str, statements: list[str]) -> None:
    with connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.execute("SELECT pg_stat_force_next_flush()")


def test_only_bloated_tables_are_vacuumed_and_their_dead_tuples_drop(erp_db, tmp_path):
    prepare(erp_db)
    churn(erp_db, ["DELETE FROM auth.login_attempts WHERE id % 2 = 0", f"DELETE FROM {QUOTED} WHERE id % 3 = 0"])
    db = make_config(tmp_path, {"erp": erp_db}).databases[0]
    actions = {a.table: a for a in run_vacuum(db)}
    assert set(actions) == {"auth.login_attempts", "Sales Data.Order Lines"}
    for action in actions.values():
        assert action.skipped is None
        assert action.dead_before > 1000 and action.dead_after == 0
    assert "VACUUM (ANALYZE)" in actions["auth.login_attempts"].statement


def test_a_locked_table_is_skipped_within_the_lock_timeout_and_the_rest_done(erp_db, tmp_path):
    prepare(erp_db)
    churn(
        erp_db,
        [
            "DELETE FROM auth.login_attempts WHERE id % 2 = 0",
            "DELETE FROM public.orders WHERE id % 2 = 0 AND id NOT IN (SELECT order_id FROM order_lines)",
            "UPDATE public.orders SET notes = 'rewritten'",
        ],
    )
    db = make_config(tmp_path, {"erp": erp_db}, "timeouts: {lock: 1s}").databases[0]
    with connect(erp_db) as locker:
        locker.execute("LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE")
        started = dt.datetime.now()
        actions = {a.table: a for a in run_vacuum(db)}
        assert (dt.datetime.now() - started).total_seconds() < 30
    assert "locked by another session" in actions["public.orders"].skipped
    assert actions["auth.login_attempts"].skipped is None and actions["auth.login_attempts"].dead_after == 0


def test_vacuum_asset_reports_in_dagster_and_xid_check_thresholds(erp_db, tmp_path):
    prepare(erp_db)
    churn(erp_db, ["DELETE FROM auth.login_attempts WHERE id % 2 = 0"])
    config = make_config(tmp_path, {"erp": erp_db}, "vacuum: {xid_age_warn: 1, xid_age_error: 2000000000}")
    instance = dg.DagsterInstance.ephemeral()
    result = capability_job(build_definitions(config), config, "erp", "vacuum").execute_in_process(
        partition_key="erp", instance=instance
    )
    assert result.success
    metadata = instance.get_latest_materialization_event(dg.AssetKey("vacuum_analyze")).asset_materialization.metadata
    assert metadata["tables_vacuumed"].value >= 1 and metadata["dead_tuples_removed"].value > 1000
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["xid_age"].passed and checks["xid_age"].severity == dg.AssetCheckSeverity.WARN
    assert checks["dead_tuples_ok"].passed
    error = xid_age_verdict(
        make_config(tmp_path, {"erp": erp_db}, "vacuum: {xid_age_warn: 1, xid_age_error: 2}").databases[0]
    )
    assert not error.passed and not error.warning_only and "past 2" in error.description
    fine = xid_age_verdict(make_config(tmp_path, {"erp": erp_db}).databases[0])
    assert fine.passed


def make_churned_index(dsn: str) -> None:
    with connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.churn (id bigint PRIMARY KEY, code text)")
        conn.execute("CREATE INDEX churn_code ON public.churn (code)")
        conn.execute("INSERT INTO public.churn SELECT g, md5(g::text) FROM generate_series(1, 200000) AS g")
        conn.execute("DELETE FROM public.churn WHERE id % 10 <> 0")  # 90% gone: pages stay half-empty
        conn.execute("VACUUM ANALYZE public.churn")


@pytest.mark.parametrize("with_pgstattuple", [False, True])
def test_a_bloated_index_is_rebuilt_and_shrinks(erp_db, tmp_path, with_pgstattuple):
    make_churned_index(erp_db)
    if with_pgstattuple:
        with connect(erp_db, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
    db = make_config(tmp_path, {"erp": erp_db}, "reindex: {bloat_ratio: 0.5, min_index_size: 1MB}").databases[0]
    outcome = run_reindex(db)
    assert outcome.method == ("pgstattuple" if with_pgstattuple else "statistics estimate")
    rebuilt = {a.index: a for a in outcome.actions if a.action == "rebuilt"}
    assert "public.churn_code" in rebuilt and "public.churn_pkey" in rebuilt
    assert all(a.bytes_after < a.bytes_before / 3 for a in rebuilt.values())
    assert "public.orders_pkey" not in rebuilt  # healthy indexes are left alone
    assert outcome.reclaimed_bytes > 0


def test_an_invalid_index_is_dropped_and_the_check_passes(erp_db, tmp_path):
    with connect(erp_db, autocommit=True) as conn:
        with pytest.raises(Exception, match="could not create unique index"):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY orders_status_ccnew ON public.orders (status)")
    config = make_config(tmp_path, {"erp": erp_db})
    verdict = invalid_index_verdict(config.databases[0])
    assert not verdict.passed and "public.orders_status_ccnew" in verdict.description
    instance = dg.DagsterInstance.ephemeral()
    result = capability_job(build_definitions(config), config, "erp", "reindex").execute_in_process(
        partition_key="erp", instance=instance
    )
    assert result.success
    metadata = instance.get_latest_materialization_event(dg.AssetKey("reindex")).asset_materialization.metadata
    assert metadata["invalid_dropped"].value == 1
    assert {c.check_name: c.passed for c in result.get_asset_check_evaluations()} == {"no_invalid_indexes": True}


def test_window_work_is_refused_outside_the_window_unless_overridden(erp_db, tmp_path):
    prepare(erp_db)
    churn(erp_db, [f"DELETE FROM {QUOTED} WHERE id % 2 = 0"])
    config = make_config(
        tmp_path, {"erp": erp_db}, f"maintenance_window: {{vacuum_full_tables: ['{QUOTED}', public.lots]}}"
    )
    if window_state(config, dt.datetime.now(dt.UTC)).inside:
        pytest.skip("running inside the real maintenance window: the refusal cannot be shown now")
    job = capability_job(build_definitions(config), config, "erp", "maintenance_window")
    refused = job.execute_in_process(
        partition_key="erp",
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"maintenance_window": {"config": {"confirm": True}}}},
        raise_on_error=False,
    )
    assert not refused.success
    error = refused.get_step_failure_events()[0].event_specific_data.error
    failure = error.cause.message if error.cause else error.message
    assert "outside the maintenance window" in failure and "override_window: true" in failure

    instance = dg.DagsterInstance.ephemeral()
    allowed = job.execute_in_process(
        partition_key="erp",
        instance=instance,
        run_config={"ops": {"maintenance_window": {"config": {"override_window": True}}}},
    )
    assert allowed.success
    metadata = instance.get_latest_materialization_event(
        dg.AssetKey("maintenance_window")
    ).asset_materialization.metadata
    assert metadata["done"].value == 2 and metadata["bytes_reclaimed"].value > 0


def test_every_run_of_a_database_carries_its_partition_for_the_run_queue(tmp_path):
    """The run queue admits one run per `dagster/partition` value (dagster.yaml): every job of a
    database's work is partitioned by database, so each of its runs carries that tag."""
    config = make_config(
        tmp_path, {"erp": "host=unused", "mes": "host=unused"}, "maintenance_window: {full_reindex: true}"
    )
    repo = build_definitions(config).get_repository_def()
    for job in repo.get_all_jobs():
        if job.name.startswith("__") or job.name in ("instance_cleanup", "maintenance_report_job"):
            continue
        assert job.partitions_def is not None and job.partitions_def.get_partition_keys() == ["erp", "mes"], job.name
        assert job.get_tags_for_partition_key("mes", selected_asset_keys=None)["dagster/partition"] == "mes"
    instance_config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert instance_config["concurrency"]["runs"]["tag_concurrency_limits"] == [
        {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]
