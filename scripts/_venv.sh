# shellcheck shell=bash
# Sourced by scripts/run.sh, scripts/test.sh and .ci/run: one place that makes the virtualenv.
#
#   source scripts/_venv.sh && venv_ensure
#
# Creates $VENV (default: .venv at the repository root) with Python 3.11 when it is missing, and
# installs requirements-dev.txt only when the requirements changed since the last install: a hash
# of both requirements files (and the interpreter's version) is kept in $VENV/.requirements.sha256.
# Afterwards $VENV/bin is first on PATH and $PYTHON names the venv's interpreter.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO_ROOT/.venv}"
PYTHON="$VENV/bin/python"

_venv_base_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "error: neither python3.11 nor python3 is on PATH" >&2
    return 1
}

_venv_requirements_hash() {
    {
        cat "$REPO_ROOT/requirements.txt" "$REPO_ROOT/requirements-dev.txt"
        "$PYTHON" -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

venv_ensure() {
    if [ ! -x "$PYTHON" ]; then
        local base
        base="$(_venv_base_python)" || return 1
        echo "Creating $VENV with $("$base" --version 2>&1)"
        "$base" -m venv "$VENV" || return 1
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        echo "warning: $VENV runs $("$PYTHON" --version 2>&1); the project is tested on 3.11" >&2
    fi
    local stamp="$VENV/.requirements.sha256" wanted
    wanted="$(_venv_requirements_hash)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
        echo "Installing requirements-dev.txt into $VENV (only when requirements change) ..."
        # This machine's pip configuration names local package folders that may be absent; pip
        # warns once per package about them, which says nothing about the install, so drop those.
        "$PYTHON" -m pip install --quiet --disable-pip-version-check \
            -r "$REPO_ROOT/requirements-dev.txt" 2>&1 |
            { grep -v "^WARNING: Location 'file://.*' is ignored" || true; }
        [ "${PIPESTATUS[0]}" -eq 0 ] || return 1
        echo "$wanted" >"$stamp"
    fi
    export PATH="$VENV/bin:$PATH"
    export VIRTUAL_ENV="$VENV"
}
