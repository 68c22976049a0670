"""The domain core: plain functions and records, no Dagster imports. Assets adapt them."""
