-- Who holds the recovery lock of target %(target)s on this server: the two-int advisory lock
-- (hashtext(%(lock_class)s), hashtext(%(target)s)), for the message that refuses a second recovery.
-- int4 keys are stored in classid/objid as oids: compared as oids of the same hashes.
SELECT a.pid,
       a.application_name,
       coalesce(host(a.client_addr), 'a local socket') AS client,
       a.backend_start
FROM pg_locks AS l
JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.granted
  AND l.objsubid = 2
  AND l.classid = hashtext(%(lock_class)s)::oid
  AND l.objid = hashtext(%(target)s)::oid
LIMIT 1
