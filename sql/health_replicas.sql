-- Standbys streaming from this server: how far each is behind, in bytes and seconds (NULL without
-- pg_monitor, or before the standby has replayed anything).
SELECT r.application_name,
       host(r.client_addr)                                                    AS client,
       r.state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::float8            AS lag_bytes,
       extract(epoch FROM r.replay_lag)::float8                               AS lag_seconds
FROM pg_stat_replication AS r
