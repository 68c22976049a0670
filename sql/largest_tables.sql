-- The largest tables with their heap, index and TOAST sizes (the capacity sample keeps 20).
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS table_name,
       pg_total_relation_size(c.oid)                             AS total_bytes,
       pg_relation_size(c.oid)                                   AS table_bytes,
       pg_indexes_size(c.oid)                                    AS index_bytes,
       COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0) AS toast_bytes
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
ORDER BY pg_total_relation_size(c.oid) DESC
LIMIT 20
