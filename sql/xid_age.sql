-- Transaction-ID age of the database and of its oldest table (wraparound watch).
SELECT
    (SELECT age(datfrozenxid) FROM pg_database WHERE datname = current_database()) AS database_xid_age,
    COALESCE(max(age(c.relfrozenxid)), 0)                                          AS oldest_table_xid_age,
    (SELECT quote_ident(n2.nspname) || '.' || quote_ident(c2.relname)
       FROM pg_class AS c2 JOIN pg_namespace AS n2 ON n2.oid = c2.relnamespace
      WHERE c2.relkind IN ('r', 'm', 't') AND c2.relfrozenxid <> '0'
      ORDER BY age(c2.relfrozenxid) DESC LIMIT 1)                                  AS oldest_table
FROM pg_class AS c
WHERE c.relkind IN ('r', 'm', 't') AND c.relfrozenxid <> '0'
