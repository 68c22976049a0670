-- Columns of one table, in order, with their exact types, and each column's place in the primary key
-- (key_position, 1-based, in the key's own order; NULL when not in it). Parameters: schema, table.
-- No row: the table does not exist.
SELECT a.attnum, a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type,
       a.attnotnull AS not_null,
       (SELECT k.ord FROM unnest(i.indkey::smallint[]) WITH ORDINALITY AS k(attnum, ord)
         WHERE k.attnum = a.attnum) AS key_position,
       c.oid::bigint AS table_oid,
       c.relkind = 'p' AS partitioned
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_index AS i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p')
ORDER BY a.attnum
