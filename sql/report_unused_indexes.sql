-- Indexes never scanned since the statistics were reset that back no constraint (primary key,
-- unique, exclusion): candidates to drop, largest first. Check replicas before dropping: their
-- scans are not counted here.
SELECT quote_ident(s.schemaname) || '.' || quote_ident(s.indexrelname) AS index_name,
       quote_ident(s.schemaname) || '.' || quote_ident(s.relname)      AS table_name,
       pg_relation_size(s.indexrelid)                                   AS index_bytes
FROM pg_stat_user_indexes AS s
JOIN pg_index AS i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0
  AND NOT i.indisunique
  AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = s.indexrelid)
ORDER BY index_bytes DESC, index_name
LIMIT 50
