-- Tables whose rows a backup counts (in the dump's snapshot) and a restore test checks:
-- ordinary and partitioned tables (a partitioned table's count covers its partitions), not
-- catalogs, not tables that belong to extensions (pg_dump leaves their data out).
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS qualified_name,
       n.nspname AS schema_name,
       c.relname AS table_name
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
  AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend AS d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  )
ORDER BY n.nspname, c.relname
