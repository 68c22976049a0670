-- One capacity sample of the connected database: its size, connections in use against the
-- server's limit, the buffer cache hit ratio since the statistics were last reset, and the
-- cumulative transaction, rollback, deadlock and temporary-file counters.
SELECT pg_database_size(current_database())                        AS database_bytes,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS connections,
       current_setting('max_connections')::int                     AS max_connections,
       (SELECT CASE WHEN sum(blks_hit + blks_read) > 0
                    THEN sum(blks_hit)::float / sum(blks_hit + blks_read) END
          FROM pg_stat_database WHERE datname = current_database()) AS cache_hit_ratio,
       (SELECT sum(pg_database_size(datname)) FROM pg_database WHERE datallowconn)::bigint AS server_database_bytes,
       d.xact_commit                                               AS commits,
       d.xact_rollback                                             AS rollbacks,
       d.deadlocks,
       d.temp_bytes,
       d.stats_reset
FROM pg_stat_database AS d
WHERE d.datname = current_database()
