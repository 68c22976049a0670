"""`<db>/table_stats` reads real statistics and reports them as metadata."""

import dagster as dg

from ops_pipelines.adapters.postgres import connect
from ops_pipelines.config import parse_config
from ops_pipelines.core.maintenance.table_stats import collect_table_stats
from ops_pipelines.definitions import build_definitions


def config_for(dsn: str, name: str = "erp_test"):
    return parse_config(
        f'backup_store: {{local_dir: /tmp/ops_test_backups}}\ndatabases:\n  - name: {name}\n    dsn: "{dsn}"\n', {}
    )


def test_dead_tuples_show_after_deletes(erp_db):
    with connect(erp_db, autocommit=True) as conn:
        deleted = conn.execute("DELETE FROM auth.login_attempts WHERE id % 4 = 0").rowcount
        conn.execute("SELECT pg_stat_force_next_flush()")
    stats = {s.qualified_name: s for s in collect_table_stats(config_for(erp_db).databases[0])}
    logins = stats["auth.login_attempts"]
    assert logins.dead_tuples >= deleted > 0
    assert 0 < logins.dead_ratio < 1
    orders = stats["public.orders"]
    assert orders.live_tuples == 2000
    assert orders.total_bytes >= orders.table_bytes + orders.index_bytes
    assert orders.index_bytes > 0 and orders.last_analyze is not None  # the generator analyzed
    assert list(stats)[0] == max(stats.values(), key=lambda s: s.total_bytes).qualified_name


def test_asset_materializes_with_figures(erp_db):
    defs = build_definitions(config_for(erp_db))
    instance = dg.DagsterInstance.ephemeral()
    key = dg.AssetKey("table_stats")
    result = dg.materialize([defs.resolve_assets_def(key)], instance=instance, partition_key="erp_test")
    assert result.success
    event = instance.get_latest_materialization_event(dg.AssetKey("table_stats"))
    metadata = event.asset_materialization.metadata
    assert metadata["tables"].value == 10
    assert metadata["live_tuples"].value > 2000
    records = {r.data["table"]: r.data for r in metadata["table_stats"].value.records}
    assert records["public.order_lines"]["live_tuples"] > 4000
    assert "10 tables" in metadata["summary"].value
    assert "password" not in str(metadata)
