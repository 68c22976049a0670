-- Measured btree bloat with pgstattuple (used when the extension is installed): reads each
-- index, so only indexes of at least the configured size are measured. Leaf density below the
-- fillfactor is bloat.
SELECT n.nspname AS schema_name, t.relname AS table_name, c.relname AS index_name, c.oid::bigint AS index_oid,
       pg_relation_size(c.oid) AS bytes,
       GREATEST(0, 1 - s.avg_leaf_density / coalesce(substring(array_to_string(c.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::float, 90))
           * pg_relation_size(c.oid) AS bloat_bytes,
       GREATEST(0, 1 - s.avg_leaf_density / coalesce(substring(array_to_string(c.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::float, 90)) AS bloat_ratio
FROM pg_index AS x
JOIN pg_class AS c ON c.oid = x.indexrelid
JOIN pg_class AS t ON t.oid = x.indrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pgstatindex(c.oid::regclass) AS s
WHERE c.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
  AND x.indisvalid
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%%'
  AND pg_relation_size(c.oid) >= %(min_bytes)s
ORDER BY bloat_bytes DESC
