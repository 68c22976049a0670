-- The ten most written tables since the statistics were reset: inserts, updates (and how many were
-- HOT, needing no index change), deletes. Write-heavy tables are where bloat and vacuum lag start.
SELECT quote_ident(schemaname) || '.' || quote_ident(relname)          AS table_name,
       n_tup_ins                                                       AS inserts,
       n_tup_upd                                                       AS updates,
       round(100.0 * n_tup_hot_upd / nullif(n_tup_upd, 0), 1)          AS hot_update_percent,
       n_tup_del                                                       AS deletes,
       n_live_tup                                                      AS live_rows
FROM pg_stat_user_tables
WHERE n_tup_ins + n_tup_upd + n_tup_del > 0
ORDER BY n_tup_ins + n_tup_upd + n_tup_del DESC, table_name
LIMIT 10
