#!/usr/bin/env bash
# The two commands of the README, each doing its own set-up on a fresh machine:
#   ./run.sh search [hydra overrides...]   the main job: a budget-constrained search on Fashion-MNIST
#   ./run.sh test   [pytest args...]       the test suite
# Both install Debian's `dataset-fashion-mnist` (its IDX files) when missing, where this user may
# (root, or password-less sudo) and a package mirror answers. Without the files the main job
# falls back to digits with a one-line notice, and the tests that need them skip.
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
# (Reinstalled too when `search` imports from another checkout: an editable install is per folder.)
here="from pathlib import Path; import search, space; assert Path(search.__file__).resolve().parent == Path('search').resolve()"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]] || ! "$PY" -c "$here" 2>/dev/null; then
    "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
    if ! "$PY" -c "import torch" 2>/dev/null; then
        "$PY" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
    fi
    "$PY" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
    echo "$want" > "$stamp"
fi

# Fashion-MNIST's four IDX files, from the Debian package; never fatal.
FASHION_MNIST=/usr/share/datasets/fashion-mnist
have_fashion_mnist() { [[ -f "$FASHION_MNIST/train-images-idx3-ubyte.gz" && -f "$FASHION_MNIST/t10k-labels-idx1-ubyte.gz" ]]; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
if ! have_fashion_mnist && command -v apt-get >/dev/null; then
    echo "installing the Debian package dataset-fashion-mnist (31 MB)" >&2
    export DEBIAN_FRONTEND=noninteractive
    { as_root apt-get update -qq && as_root apt-get install -y -qq dataset-fashion-mnist; } >/dev/null 2>&1 || true
fi

cmd="${1:-}"
shift || true
case "$cmd" in
    search)
        if ! have_fashion_mnist && [[ ! " $* " =~ \ data(=|\.) ]]; then
            echo "notice: no Fashion-MNIST in $FASHION_MNIST (apt-get install dataset-fashion-mnist needs root and a package mirror); running on data=digits instead" >&2
            set -- data=digits "$@"
        fi
        exec "$PY" -m search "$@" ;;
    test) exec "$PY" -m pytest "$@" ;;
    *) echo "usage: ./run.sh search|test [args...]" >&2; exit 2 ;;
esac
