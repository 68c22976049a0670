-- Who holds the session-level advisory lock %(lock_id)s (a bigint key) in the current database:
-- for the message that refuses a second backup.
SELECT a.pid,
       a.application_name,
       coalesce(host(a.client_addr), 'a local socket') AS client,
       a.backend_start
FROM pg_locks AS l
JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.granted
  AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((l.classid::bigint << 32) | l.objid::bigint) = %(lock_id)s
LIMIT 1
