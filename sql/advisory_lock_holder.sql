-- Who holds a granted advisory lock, for the message that refuses a second backup or recovery.
-- pg_locks stores a lock on one bigint key as classid = its high 32 bits, objid = its low 32 bits,
-- objsubid = 1, and a lock on two int4 keys as classid = key1, objid = key2, objsubid = 2. Both
-- halves arrive here as int4 and compare as the oids they are stored as.
SELECT a.pid,
       a.application_name,
       coalesce(host(a.client_addr), 'a local socket') AS client,
       a.backend_start
FROM pg_locks AS l
JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.granted
  AND l.objsubid = %(objsubid)s
  AND l.classid = %(classid)s::int4::oid
  AND l.objid = %(objid)s::int4::oid
  AND (NOT %(this_database_only)s OR l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
LIMIT 1
