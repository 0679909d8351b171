"""Every benchmark runs in a tiny mode, so none can rot: same code paths, a few trials or
genotypes instead of hundreds. The figures they print are checked for shape, not value (timing
goals are judged on full runs, never in tests)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import torch

from tests.search.conftest import REPO

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
            "--jobs",
            "1",
            "data=digits",
            "data.subset=300",
            "data.val_size=null",
            "data.val_epoch_size=100",
            "train.epochs=1",
            "search.confirm.epochs=1",
            "search.confirm.subset=null",
        ],
        "Kendall tau between",
    ),
    "overhead.py": (["--trials", "2", "--epochs", "1"], "per-trial overhead"),
    "spaces.py": (
        ["--networks", "2", "--jobs", "1", "--out", "spaces.png", "data=digits", "data.subset=300", "train.epochs=1"],
        "share of stage-space networks",
    ),
    "proxies.py": (
        ["--data", "synthetic", "--n", "4", "--epochs", "1", "--jobs", "1", "--out", "proxies.csv"],
        "kendall tau",
    ),
    "candidates.py": (["--trials", "6", "--samplers", "random", "tpe"], "| tpe |"),
    "samplers.py": (["--trials", "2", "--seeds", "1", "--epochs", "1"], "best val"),
    "supernet.py": (
        [
            *("--networks", "3", "--epochs", "1", "--jobs", "1", "--threads", "1", "--spaces", "module"),
            *("--cache", "cache", "data=digits", "data.subset=300", "data.val_size=null", "data.val_epoch_size=100"),
            *("train.epochs=1", "search.confirm.epochs=1", "search.confirm.subset=null"),
        ],
        "candidates per second",
    ),
    "train.py": (["--epochs", "1", "--repeats", "1", "--threads", "1", "--limit", "128"], "img/s"),
    "workers.py": (
        ["--seconds", "0.05", "--trials", "4", "--workers", "1", "2", "--storages", "journal"],
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
def test_benchmark_runs_in_tiny_mode(
    script: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The script as `python bench/<script>` runs it (`__main__`, its own argument parser), in this
    process: torch and the project are imported already, which is most of a tiny run's seconds.
    The processes a benchmark starts itself (spawned trainers, workers) are real."""
    args, expected = TINY[script]
    path = REPO / "bench" / script
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # for the processes it spawns
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    monkeypatch.syspath_prepend(str(path.parent))  # as `python bench/<script>` has it (bench/spaces.py imports noise)
    threads = torch.get_num_threads()
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        torch.set_num_threads(threads)  # a benchmark sets its own; the next test gets this process's
    out = capsys.readouterr().out
    assert expected in out, out
