-- Per-table sizes, tuple counts and maintenance history for every user table.
-- Read by <db>/table_stats; the vacuum and reindex steps choose their work from the same figures.
SELECT
    s.schemaname                                   AS schema_name,
    s.relname                                      AS table_name,
    pg_total_relation_size(s.relid)                AS total_bytes,
    pg_relation_size(s.relid)                      AS table_bytes,
    pg_indexes_size(s.relid)                       AS index_bytes,
    COALESCE(pg_total_relation_size(c.reltoastrelid), 0) AS toast_bytes,
    s.n_live_tup                                   AS live_tuples,
    s.n_dead_tup                                   AS dead_tuples,
    CASE WHEN s.n_live_tup + s.n_dead_tup > 0
         THEN round(s.n_dead_tup::numeric / (s.n_live_tup + s.n_dead_tup), 4)
         ELSE 0 END                                AS dead_ratio,
    s.n_mod_since_analyze                          AS modified_since_analyze,
    GREATEST(s.last_vacuum, s.last_autovacuum)     AS last_vacuum,
    GREATEST(s.last_analyze, s.last_autoanalyze)   AS last_analyze,
    s.vacuum_count + s.autovacuum_count            AS vacuum_count,
    s.analyze_count + s.autoanalyze_count          AS analyze_count,
    age(c.relfrozenxid)                            AS xid_age
FROM pg_stat_user_tables AS s
JOIN pg_class AS c ON c.oid = s.relid
ORDER BY pg_total_relation_size(s.relid) DESC, s.schemaname, s.relname
