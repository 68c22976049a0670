-- Tables (not partitions: their parent counts) without a primary key: logical replication cannot
-- replicate their updates and deletes, and duplicate rows go unnoticed.
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS table_name,
       greatest(c.reltuples, 0)::bigint                        AS estimated_rows,
       pg_total_relation_size(c.oid)                           AS total_bytes
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS k WHERE k.conrelid = c.oid AND k.contype = 'p')
ORDER BY total_bytes DESC, table_name
LIMIT 50
