-- Is there a foreign key from child(fk_column) to parent? Parameters: child_oid, parent_oid, fk_column.
SELECT con.conname AS constraint_name
FROM pg_constraint AS con
JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
WHERE con.contype = 'f'
  AND con.conrelid = %(child_oid)s::oid
  AND con.confrelid = %(parent_oid)s::oid
  AND array_length(con.conkey, 1) = 1
  AND a.attname = %(fk_column)s
