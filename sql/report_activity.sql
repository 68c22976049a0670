-- Cache hit ratio, traffic and errors of this database since its statistics were reset, and the
-- connections in use against max_connections (client backends of the whole server count).
SELECT round(100.0 * d.blks_hit / nullif(d.blks_hit + d.blks_read, 0), 2)           AS cache_hit_percent,
       d.xact_commit                                                              AS commits,
       d.xact_rollback                                                            AS rollbacks,
       d.deadlocks,
       d.temp_bytes,
       d.stats_reset,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS connections,
       (SELECT count(*) FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND datname = current_database())   AS database_connections,
       current_setting('max_connections')::int                                    AS max_connections,
       current_setting('superuser_reserved_connections')::int                     AS reserved_connections
FROM pg_stat_database AS d
WHERE d.datname = current_database()
