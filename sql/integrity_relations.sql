-- What amcheck verifies: every valid btree index of a permanent table (not the catalogs), and the
-- tables themselves (verify_heapam, when asked). Largest first: a timeout then names the big ones.
SELECT c.oid,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name,
       CASE WHEN c.relkind = 'i' THEN 'index' ELSE 'table' END AS kind,
       pg_relation_size(c.oid)                                  AS bytes
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_index AS i ON i.indexrelid = c.oid
LEFT JOIN pg_am AS am ON am.oid = c.relam
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg_temp%'
  AND c.relpersistence = 'p'
  AND ((c.relkind = 'i' AND am.amname = 'btree' AND i.indisvalid AND i.indisready)
    OR c.relkind IN ('r', 'm'))
ORDER BY pg_relation_size(c.oid) DESC
