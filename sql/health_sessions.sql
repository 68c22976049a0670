-- Client sessions of this database but ours, with their ages in seconds (the health probe's
-- long_transactions and idle-in-transaction figures). Without pg_monitor, other roles' sessions
-- show no state, times or backend type: `visible` is false for them and the probe says so.
SELECT a.pid,
       a.usename                                              AS username,
       a.application_name,
       a.state,
       a.state IS NOT NULL                                    AS visible,
       extract(epoch FROM now() - a.query_start)::float8      AS query_seconds,
       extract(epoch FROM now() - a.state_change)::float8     AS state_seconds,
       extract(epoch FROM now() - a.xact_start)::float8       AS xact_seconds,
       a.backend_xmin IS NOT NULL                             AS holds_xmin,
       left(regexp_replace(a.query, '\s+', ' ', 'g'), 200)    AS query
FROM pg_stat_activity AS a
WHERE (a.backend_type = 'client backend' OR (a.backend_type IS NULL AND a.datname IS NOT NULL))  -- hidden: NULL
  AND a.pid <> pg_backend_pid()
  AND a.datname = current_database()
