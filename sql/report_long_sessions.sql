-- Sessions of this database running one statement, or holding a transaction open while idle, for
-- longer than %(min_seconds)s seconds: the latter hold back vacuum and keep their locks.
SELECT a.pid,
       a.usename                                                                  AS username,
       a.application_name,
       host(a.client_addr)                                                        AS client,
       a.state,
       extract(epoch FROM now() - CASE WHEN a.state = 'active' THEN a.query_start ELSE a.xact_start END)::bigint
                                                                                  AS seconds,
       a.wait_event_type,
       left(regexp_replace(a.query, '\s+', ' ', 'g'), 300)                         AS query
FROM pg_stat_activity AS a
WHERE a.datname = current_database()
  AND a.backend_type = 'client backend'
  AND a.pid <> pg_backend_pid()
  AND ((a.state = 'active' AND a.query_start < now() - make_interval(secs => %(min_seconds)s))
    OR (a.state LIKE 'idle in transaction%%' AND a.xact_start < now() - make_interval(secs => %(min_seconds)s)))
ORDER BY seconds DESC
LIMIT 20
