-- Replication slots of the server: active or not, and the WAL each keeps (bytes behind the current
-- WAL position; NULL on a standby, where there is no current position to measure against).
SELECT s.slot_name,
       s.slot_type,
       s.active,
       s.database,
       CASE WHEN pg_is_in_recovery() OR s.restart_lsn IS NULL THEN NULL
            ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::float8 END AS retained_bytes
FROM pg_replication_slots AS s
