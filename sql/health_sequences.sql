-- Every sequence of this database with how far it has gone: its last value against the lower of
-- its own maximum and the maximum of the column it feeds (serial: an 'a' dependency; identity: 'i').
-- `readable` is false where the role may not read the sequence (last_value is then unknown).
SELECT sn.nspname                                              AS sequence_schema,
       sc.relname                                              AS sequence_name,
       has_sequence_privilege(sc.oid, 'SELECT,USAGE')           AS readable,
       ps.last_value,                                          -- NULL: never used, or not readable
       s.seqmax                                                AS sequence_max,
       s.seqmin                                                AS sequence_min,
       s.seqincrement                                          AS increment,
       tn.nspname                                              AS table_schema,
       tc.relname                                              AS table_name,
       att.attname                                             AS column_name,
       att.atttypid::regtype::text                             AS column_type
FROM pg_class AS sc
JOIN pg_namespace AS sn ON sn.oid = sc.relnamespace
JOIN pg_sequence AS s ON s.seqrelid = sc.oid
LEFT JOIN pg_sequences AS ps ON ps.schemaname = sn.nspname AND ps.sequencename = sc.relname
LEFT JOIN pg_depend AS d
       ON d.classid = 'pg_class'::regclass AND d.objid = sc.oid
      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class AS tc ON tc.oid = d.refobjid
LEFT JOIN pg_namespace AS tn ON tn.oid = tc.relnamespace
LEFT JOIN pg_attribute AS att ON att.attrelid = d.refobjid AND att.attnum = d.refobjsubid
WHERE sc.relkind = 'S'
  AND sn.nspname NOT IN ('pg_catalog', 'information_schema')
