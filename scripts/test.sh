#!/usr/bin/env bash
# The test suite, against real PostgreSQL: $OPS_TEST_PG_DSN when set, else a server on
# 127.0.0.1:5432, else a throwaway cluster the tests start themselves. Extra arguments go to pytest.
source "$(dirname "$0")/bootstrap.sh"
cd "$REPO"
exec "$VENV/bin/python" -m pytest "$@"
