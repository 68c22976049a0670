"""Backups and their proof: the pg_dump backup, the catalog and manifests, checks, off-site copies,
retention, restore tests, recovery, and the judgement of what stands proven."""
