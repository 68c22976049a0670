-- The ten statements of this database with the highest mean or total execution time (the ORDER BY
-- column is filled in), from pg_stat_statements (PostgreSQL 13+ names), in the schema it is installed in.
SELECT left(regexp_replace(s.query, '\s+', ' ', 'g'), 300)                        AS query,
       s.calls,
       round(s.total_exec_time::numeric, 1)                                        AS total_ms,
       round(s.mean_exec_time::numeric, 2)                                         AS mean_ms,
       s.rows,
       round(100.0 * s.shared_blks_hit / nullif(s.shared_blks_hit + s.shared_blks_read, 0), 1) AS hit_percent
FROM {schema}.pg_stat_statements AS s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY s.{order} DESC
LIMIT 10
