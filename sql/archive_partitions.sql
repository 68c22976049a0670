-- The partitions of a partitioned table, with their bounds as PostgreSQL prints them
-- ("FOR VALUES FROM (...) TO (...)", or "DEFAULT"), and whether each is itself partitioned.
-- Parameter: table_oid.
SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name,
       pg_get_expr(c.relpartbound, c.oid) AS bound,
       c.relkind = 'p' AS partitioned
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE i.inhparent = %(table_oid)s::oid
ORDER BY c.relname
