#!/usr/bin/env bash
# The two commands of the README, each doing its own set-up on a fresh machine:
#   ./run.sh search [hydra overrides...]   the main job: a budget-constrained search on digits
#   ./run.sh test   [pytest args...]       the test suite
# Set-up: use the active virtual environment, or create .venv; install torch==2.13.0 (a CPU
# build) first when no torch is installed, so the open torch range in pyproject.toml never pulls
# a multi-GB CUDA build; then install the project with its dev extras (skipped when unchanged).
set -euo pipefail
cd "$(dirname "$0")"

if [[ -z "${VIRTUAL_ENV:-}" ]]; then
    [[ -x .venv/bin/python ]] || python3 -m venv .venv
    VIRTUAL_ENV="$PWD/.venv"
fi
PY="$VIRTUAL_ENV/bin/python"

stamp="$VIRTUAL_ENV/.inception-nas-installed"
want="$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]] || ! "$PY" -c "import space, search" 2>/dev/null; then
    "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
    if ! "$PY" -c "import torch" 2>/dev/null; then
        "$PY" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
    fi
    "$PY" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
    echo "$want" > "$stamp"
fi

cmd="${1:-}"
shift || true
case "$cmd" in
    search) exec "$PY" -m search "$@" ;;
    test) exec "$PY" -m pytest "$@" ;;
    *) echo "usage: ./run.sh search|test [args...]" >&2; exit 2 ;;
esac
