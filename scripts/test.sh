#!/usr/bin/env bash
# The test suite, against real PostgreSQL: $OPS_TEST_PG_DSN when set, else a server on
# 127.0.0.1:5432, else a throwaway cluster the tests start themselves. Extra arguments go to pytest.
source "$(dirname "$0")/bootstrap.sh"

# The report test opens the HTML report in headless Chromium; without it that one test is skipped.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        apt_install chromium || say "could not install chromium: the browser test will be skipped"
    else
        say "chromium is not installed (sudo apt-get install chromium): the browser test will be skipped"
    fi
fi

# The Alertmanager test posts to a real Alertmanager (Debian's package); without it that test is skipped.
if ! command -v prometheus-alertmanager >/dev/null 2>&1 && ! command -v alertmanager >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        apt_install prometheus-alertmanager || say "could not install prometheus-alertmanager: its test will be skipped"
    else
        say "prometheus-alertmanager is not installed (sudo apt-get install prometheus-alertmanager): its test will be skipped"
    fi
fi

cd "$REPO"
say "ruff (lint, format), pyright (basic, the package) and import-linter (the layer contracts in pyproject.toml)"
"$VENV/bin/ruff" check --quiet .
"$VENV/bin/ruff" format --check --quiet .
"$VENV/bin/pyright" --outputjson >/dev/null || { "$VENV/bin/pyright" >&2; die "pyright found type errors (above)"; }
if ! layers="$("$VENV/bin/lint-imports" --no-cache 2>&1)"; then
    printf '%s\n' "$layers" | grep -v '^[╔╚║ └▲]' >&2
    die "import-linter: a layer contract is broken (above)"
fi
say "$(printf '%s\n' "$layers" | grep '^Contracts:')"
exec "$VENV/bin/python" -m pytest "$@"
