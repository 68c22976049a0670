# Sourced by demo.sh and test.sh: a Python 3.11+ virtualenv with the project installed, and the
# PostgreSQL server programs (initdb, pg_ctl, pg_dump, pg_restore). Installs with apt when root.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        die "missing: $*. Install them with: sudo apt-get install -y $*"
    fi
    say "installing $* with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

find_python() {
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

ensure_venv() {
    local python stamp want
    if [ ! -x "$VENV/bin/python" ]; then
        python="$(find_python)" || { apt_install python3 python3-venv; python="$(find_python)"; } ||
            die "Python 3.11 or newer is needed"
        if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
            apt_install python3-venv
        fi
        say "creating the virtualenv in $VENV"
        "$python" -m venv "$VENV"
    fi
    # Reinstall only when the dependencies changed, so re-runs are quick.
    stamp="$VENV/.ops_pipelines-installed"
    want="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        say "installing ops_pipelines and its dependencies into the virtualenv"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -e "$REPO[dev]"
        echo "$want" > "$stamp"
    fi
}

ensure_postgres_programs() {
    if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
        return 0
    fi
    apt_install postgresql postgresql-client
}

ensure_venv
ensure_postgres_programs
