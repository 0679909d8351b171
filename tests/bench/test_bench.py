"""Every benchmark runs in a tiny mode, so none can rot: same code paths, a few trials or
genotypes instead of hundreds. The figures they print are checked for shape, not value (timing
goals are judged on full runs, never in tests)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.search.conftest import REPO, search_env

TINY = {
    "budget.py": (["--trials", "6", "--seeds", "1"], "over-budget"),
    "cost.py": (["--n", "2"], "fvcore"),
    "data.py": (
        ["--images", "60", "--resolutions", "32", "--passes", "1", "--steps", "2", "--workers", "1"],
        "waiting",
    ),
    "latency.py": (["--fit", "4", "--n", "6", "--repeats", "3"], "Kendall tau"),
    "noise.py": (
        [
            "--networks",
            "3",
            "data=digits",
            "data.subset=null",
            "data.val_size=null",
            "data.val_epoch_size=100",
            "train.epochs=2",
            "search.confirm.epochs=1",
            "search.confirm.subset=null",
        ],
        "Kendall tau between",
    ),
    "overhead.py": (["--trials", "2", "--epochs", "1"], "per-trial overhead"),
    "spaces.py": (
        ["--networks", "3", "--out", "spaces.png", "data=digits", "data.subset=null", "train.epochs=1"],
        "share of stage-space networks",
    ),
    "proxies.py": (["--data", "synthetic", "--n", "6", "--epochs", "1", "--out", "proxies.csv"], "kendall tau"),
    "samplers.py": (["--trials", "2", "--seeds", "1", "--epochs", "1"], "best val"),
    "train.py": (["--epochs", "1", "--repeats", "1"], "img/s"),
    "workers.py": (
        ["--seconds", "0.05", "--trials", "4", "--workers", "1", "2", "--storages", "sqlite", "journal"],
        "journal",
    ),
}


def test_every_benchmark_has_a_tiny_mode() -> None:
    scripts = {p.name for p in (REPO / "bench").glob("*.py")} - {"sleep_workers.py"}  # a helper, not a bench
    assert scripts == set(TINY)


# Two of them in the inner loop (-m "not slow"), every one in the full suite.
INNER_LOOP = {"cost.py", "latency.py"}


@pytest.mark.parametrize(
    "script", [s if s in INNER_LOOP else pytest.param(s, marks=pytest.mark.slow) for s in sorted(TINY)]
)
def test_benchmark_runs_in_tiny_mode(script: str, tmp_path) -> None:
    args, expected = TINY[script]
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=tmp_path,
        env=search_env(WANDB_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert expected in proc.stdout, proc.stdout
