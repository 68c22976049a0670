-- The sampled cumulative pg_stat_database counters of one database since %(since)s, oldest first;
-- the report turns consecutive samples into daily transactions, rollbacks, deadlocks and temp bytes.
SELECT sampled_at, commits, rollbacks, deadlocks, temp_bytes, stats_reset
FROM ops_metrics.capacity_samples
WHERE database = %(database)s
  AND source = 'sampled'
  AND commits IS NOT NULL
  AND sampled_at >= %(since)s
ORDER BY sampled_at
