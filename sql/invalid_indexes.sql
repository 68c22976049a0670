-- Indexes left invalid by a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY
-- (the `_ccnew` / `_ccold` leftovers): they cost writes and serve no query.
SELECT n.nspname AS schema_name, t.relname AS table_name, c.relname AS index_name,
       pg_relation_size(c.oid) AS bytes
FROM pg_index AS x
JOIN pg_class AS c ON c.oid = x.indexrelid
JOIN pg_class AS t ON t.oid = x.indrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE NOT x.indisvalid
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
ORDER BY n.nspname, c.relname
