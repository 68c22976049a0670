-- Sessions of this database waiting on a lock, how long (pg_locks.waitstart, PostgreSQL 14+), and
-- who blocks them (pg_blocking_pids), named by pid, role and application.
SELECT a.pid,
       a.usename                                                      AS username,
       a.application_name,
       extract(epoch FROM now() - COALESCE(w.waitstart, a.state_change))::float8 AS waiting_seconds,
       left(regexp_replace(a.query, '\s+', ' ', 'g'), 200)            AS query,
       (SELECT string_agg(b.pid || ' (' || COALESCE(b.usename, '?') || ', ' || COALESCE(NULLIF(b.application_name, ''), '?')
                          || ', ' || COALESCE(b.state, '?') || ')', '; ' ORDER BY b.pid)
          FROM pg_stat_activity AS b
         WHERE b.pid = ANY (pg_blocking_pids(a.pid)))                 AS blocked_by
FROM pg_stat_activity AS a
LEFT JOIN LATERAL (SELECT min(l.waitstart) AS waitstart FROM pg_locks AS l WHERE l.pid = a.pid AND NOT l.granted) AS w
       ON true
WHERE a.wait_event_type = 'Lock'
  AND a.datname = current_database()
  AND a.pid <> pg_backend_pid()
