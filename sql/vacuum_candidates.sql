-- Every user table with the figures that decide whether it needs VACUUM, ANALYZE or FREEZE.
-- Thresholds are applied in Python so the decision and its reason are visible. No size function
-- here: they lock the table, and a table another session holds locked must not stall the plan.
SELECT
    s.schemaname                               AS schema_name,
    s.relname                                  AS table_name,
    s.n_live_tup                               AS live_tuples,
    s.n_dead_tup                               AS dead_tuples,
    s.n_mod_since_analyze                      AS modified_since_analyze,
    GREATEST(c.reltuples, 0)::bigint           AS estimated_rows,
    age(c.relfrozenxid)                        AS xid_age,
    c.relpages::bigint * current_setting('block_size')::bigint AS total_bytes,  -- as of the last vacuum
    GREATEST(s.last_vacuum, s.last_autovacuum) AS last_vacuum,
    GREATEST(s.last_analyze, s.last_autoanalyze) AS last_analyze
FROM pg_stat_user_tables AS s
JOIN pg_class AS c ON c.oid = s.relid
WHERE c.relkind IN ('r', 'm', 't')
ORDER BY s.n_dead_tup DESC, s.schemaname, s.relname
