-- Sets of indexes on the same table with the same columns, operator classes, collations,
-- expressions and predicate: one of each set is enough (keep the one backing a constraint).
SELECT quote_ident(n.nspname) || '.' || quote_ident(t.relname)                      AS table_name,
       array_agg(quote_ident(n.nspname) || '.' || quote_ident(c.relname) ORDER BY c.relname) AS indexes,
       sum(pg_relation_size(c.oid)) - max(pg_relation_size(c.oid))                   AS wasted_bytes
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
JOIN pg_class AS t ON t.oid = i.indrelid
JOIN pg_namespace AS n ON n.oid = t.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
GROUP BY n.nspname, t.relname, i.indrelid, i.indkey::text, i.indclass::text, i.indcollation::text,
         coalesce(pg_get_expr(i.indexprs, i.indrelid), ''), coalesce(pg_get_expr(i.indpred, i.indrelid), '')
HAVING count(*) > 1
ORDER BY wasted_bytes DESC, table_name
