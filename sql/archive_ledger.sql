-- What archival added to a destination schema, batch by batch: the archive_consistent check
-- compares these sums with the destination tables themselves. Created once per destination.
CREATE TABLE IF NOT EXISTS {schema}.ops_archive_ledger (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule            text NOT NULL,
    source_table    text NOT NULL,
    archive_table   text NOT NULL,
    rows_added      bigint NOT NULL,
    key_checksum    numeric NOT NULL,
    run_id          text NOT NULL,
    archived_at     timestamptz NOT NULL DEFAULT now()
)
