-- On a streaming replica: how far its replay is behind, in seconds (0 when it has replayed all it
-- received; since its start when it has replayed no transaction yet), and whether it is a replica.
SELECT pg_is_in_recovery() AS replica,
       CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - coalesce(pg_last_xact_replay_timestamp(), pg_postmaster_start_time()))
       END::float8 AS lag_seconds
