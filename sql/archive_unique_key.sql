-- A table without a primary key: its narrowest valid, non-partial unique index on plain NOT NULL
-- columns, which identifies rows as well as a primary key would. Parameter: table_oid.
SELECT ic.relname AS index_name,
       array_agg(a.attname::text ORDER BY k.ord) AS columns
FROM pg_index AS i
JOIN pg_class AS ic ON ic.oid = i.indexrelid
CROSS JOIN LATERAL unnest(i.indkey::smallint[]) WITH ORDINALITY AS k(attnum, ord)
LEFT JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %(table_oid)s::oid
  AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
GROUP BY ic.relname
HAVING bool_and(coalesce(a.attnotnull, false))
ORDER BY count(*), ic.relname
LIMIT 1
