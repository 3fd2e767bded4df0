# shellcheck shell=bash
# Sourced by scripts/test and scripts/run: cd to the repository root and make sure .venv
# exists (python3 >= 3.11) with the project installed editable with its dev extras.
# Reinstalls when the venv is new or pyproject.toml is newer than the install stamp.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

VENV="$REPO_ROOT/.venv"
VENV_STAMP="$VENV/.licenses-installed"

ensure_venv() {
    local python="${PYTHON:-python3}" fresh=0
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
        if ! command -v "$python" >/dev/null 2>&1; then
            echo "error: $python not found; Python >= 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
            exit 1
        fi
        if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "error: $python is Python $("$python" -c 'import platform; print(platform.python_version())'); Python >= 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
            exit 1
        fi
        echo "--- creating $VENV with $python" >&2
        rm -rf "$VENV"
        if ! "$python" -m venv "$VENV"; then
            echo "error: '$python -m venv' failed; on Debian/Ubuntu install the python3-venv package" >&2
            rm -rf "$VENV"
            exit 1
        fi
        fresh=1
    fi
    if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "error: $VENV uses Python < 3.11; remove it (rm -rf .venv) and retry with Python >= 3.11" >&2
        exit 1
    fi
    if (( fresh )) || [[ ! -f "$VENV_STAMP" || pyproject.toml -nt "$VENV_STAMP" ]]; then
        echo "--- installing the project into $VENV (pip install -e '.[dev]')" >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
        touch "$VENV_STAMP"
    fi
}
