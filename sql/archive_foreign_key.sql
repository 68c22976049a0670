-- The foreign keys from a child table to its parent, with their columns in the constraint's order:
-- `columns` on the child, `referenced` on the parent. Parameters: child_oid, parent_oid.
SELECT con.conname AS constraint_name,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.attnum) AS columns,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute AS a ON a.attrelid = con.confrelid AND a.attnum = k.attnum) AS referenced
FROM pg_constraint AS con
WHERE con.contype = 'f'
  AND con.conparentid = 0
  AND con.conrelid = %(child_oid)s::oid
  AND con.confrelid = %(parent_oid)s::oid
ORDER BY con.conname
