-- Every foreign key that references one of an archive rule's tables (%(table_oids)s): moving rows
-- out from under it would fail (NO ACTION, RESTRICT), or delete or change rows nobody archived
-- (CASCADE, SET NULL, SET DEFAULT). Partitions' copies of a constraint are left out (conparentid).
SELECT con.conname AS constraint_name,
       con.conrelid AS referencing_oid,
       n.nspname || '.' || c.relname AS referencing_table,
       con.confrelid AS referenced_oid,
       CASE con.confdeltype
           WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE'
           WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT'
       END AS on_delete,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.attnum) AS columns
FROM pg_constraint AS con
JOIN pg_class AS c ON c.oid = con.conrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE con.contype = 'f'
  AND con.conparentid = 0
  AND con.confrelid = ANY(%(table_oids)s::oid[])
ORDER BY referencing_table, constraint_name
