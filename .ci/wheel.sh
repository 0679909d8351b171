#!/usr/bin/env bash
# The package as a user installs it: build the wheel, install it into a fresh virtual environment
# (torch==2.13.0 first, so pip never pulls a CUDA build; the rest from the package index), and
# from an empty folder run every console script: --help, a tiny search, its report, an export
# of its best network, an ablation, a comparison, a cost table and a one-epoch supernet. No
# checkout on the path.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
PY="${VIRTUAL_ENV:-$repo/.venv}/bin/python"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation -w "$work/dist" "$repo"
python3 -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" "$work"/dist/*.whl
bin="$work/venv/bin"

mkdir "$work/empty" && cd "$work/empty"
export WANDB_MODE=offline PYTHONPATH=
fail() { echo "wheel check failed: $*" >&2; exit 1; }
for cmd in inception-search inception-ablate inception-compare inception-benchmark inception-supernet; do
    out="$("$bin/$cmd" --help 2>&1)" || fail "$cmd --help exited $?"
    [[ "$out" == *"== Configuration groups =="* && "$out" != *Traceback* ]] || fail "$cmd --help: $out"
done
tiny=(data=synthetic data.n_samples=192 train.epochs=1 logger=wandb)
"$bin/inception-search" "${tiny[@]}" hparams_search=fashion-mnist search.n_trials=3 search.n_workers=1 study.name=tiny progress=false
grep -q "train.momentum" results/tiny/best_hyperparameters.yaml || fail "the packaged hparams_search file was not searched"
[[ -f results/tiny/study.db && -f results/tiny/report.md ]] || fail "no study in results/tiny"
rm results/tiny/report.md
"$bin/inception-report" results/tiny
[[ -f results/tiny/report.md ]] || fail "inception-report wrote no report.md"
"$bin/inception-export" results/tiny --out exported
ls exported/*.pt >/dev/null || fail "inception-export wrote no TorchScript file"
"$bin/inception-ablate" "${tiny[@]}" experiment=reductions experiment.per_module=false 'experiment.reduce_ratios=[]' experiment.seeds=1 keep_weights=true
[[ -f results/reductions/report.md ]] && ls results/reductions/weights/*.pt >/dev/null || fail "no ablation report or weights"
"$bin/inception-report" results/reductions
"$bin/inception-compare" "${tiny[@]}" experiment.seeds=1 experiment.latency_repeats=3 data.resolution=32 'experiment.architectures=[googlenet-small,results/tiny]'
[[ -f results/compare/report.md ]] || fail "no comparison report"
"$bin/inception-cost" googlenet >/dev/null
"$bin/inception-supernet" data=synthetic data.n_samples=192 supernet.epochs=1 supernet.probes=0 logger=none
ls results/supernets/*/supernet.pt >/dev/null || fail "inception-supernet wrote no supernet.pt"
if "$bin/inception-search" experiment=aux 2>err.txt; then fail "inception-search took experiment=aux"; fi
[[ "$(wc -l <err.txt)" -eq 1 ]] && grep -q "an experiment of inception-ablate and inception-compare" err.txt || fail "experiment=aux: $(cat err.txt)"
echo "wheel check: $(basename "$work"/dist/*.whl) installed in a fresh venv; search, report, export, ablate, compare, cost and supernet ran from an empty folder"
