#!/usr/bin/env bash
# The demo: a local PostgreSQL cluster with a sample ERP database, a Dagster instance stored in
# it, every asset materialized once, then the Dagster UI on http://127.0.0.1:3000.
#   ./scripts/demo.sh            # ... and keep the UI running (Ctrl-C stops it)
#   ./scripts/demo.sh --no-ui    # stop after materializing (scripts, CI)
#   ./scripts/demo.sh --ui-only  # the UI on what an earlier run materialized (seconds, not minutes)
#   ./scripts/demo.sh --stop     # stop the demo's PostgreSQL cluster
#   ./scripts/demo.sh --help
# Everything it makes lives in .demo/ (git-ignored); re-running reuses it.
source "$(dirname "$0")/bootstrap.sh"
cd "$REPO"
exec "$VENV/bin/python" -m ops_pipelines.demo "$@"
