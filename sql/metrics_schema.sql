-- The project's own metrics schema, in the metrics database named by `metrics.dsn`. Applied
-- idempotently before every capacity sample; history here survives Dagster's run retention, and
-- Grafana can read it directly.
CREATE SCHEMA IF NOT EXISTS ops_metrics;

CREATE TABLE IF NOT EXISTS ops_metrics.capacity_samples (
    database            text        NOT NULL,
    sampled_at          timestamptz NOT NULL,
    source              text        NOT NULL DEFAULT 'sampled' CHECK (source IN ('sampled', 'imported')),
    database_bytes      bigint      NOT NULL,
    wal_bytes           bigint,
    connections         integer,
    max_connections     integer,
    cache_hit_ratio     double precision,
    volume_used_bytes   bigint,
    volume_total_bytes  bigint,
    PRIMARY KEY (database, sampled_at)
);

-- Cumulative counters of pg_stat_database (added after the first release: ADD COLUMN IF NOT
-- EXISTS upgrades an existing schema in place). The report turns them into daily traffic.
ALTER TABLE ops_metrics.capacity_samples
    ADD COLUMN IF NOT EXISTS commits     bigint,
    ADD COLUMN IF NOT EXISTS rollbacks   bigint,
    ADD COLUMN IF NOT EXISTS deadlocks   bigint,
    ADD COLUMN IF NOT EXISTS temp_bytes  bigint,
    ADD COLUMN IF NOT EXISTS stats_reset timestamptz;

CREATE TABLE IF NOT EXISTS ops_metrics.table_sizes (
    database     text        NOT NULL,
    sampled_at   timestamptz NOT NULL,
    table_name   text        NOT NULL,
    total_bytes  bigint      NOT NULL,
    table_bytes  bigint      NOT NULL,
    index_bytes  bigint      NOT NULL,
    toast_bytes  bigint      NOT NULL,
    PRIMARY KEY (database, sampled_at, table_name)
);
