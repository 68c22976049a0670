-- Columns of one table, in order, with their exact types and whether each is in the primary key.
-- Parameters: schema, table. No row: the table does not exist.
SELECT a.attnum, a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type,
       a.attnotnull AS not_null,
       COALESCE(a.attnum = ANY (i.indkey), false) AS in_primary_key,
       c.oid::bigint AS table_oid
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_index AS i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p')
ORDER BY a.attnum
