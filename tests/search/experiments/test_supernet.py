"""`inception-supernet`: trains once per key and reuses the weights, logs one W&B run with the
per-epoch loss and probe accuracies, refuses bad settings in one line, and (a real process)
stops on Ctrl-C with the last epoch kept, the same command resuming from it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.apps.supernet import main
from tests.search.conftest import run_cli_in_process, search_env
from tests.search.wandb_records import read_runs

TINY = [
    "data=synthetic",
    "data.n_samples=256",
    "data.subset=null",
    "data.val_size=null",
    "data.val_epoch_size=null",
    "budget.macs=1000000",
    "supernet.epochs=2",
    "supernet.calibration_batches=2",
    "supernet.calibration_batch_size=32",
    "supernet.probes=1",
    "train.batch_size=64",
]


def _folders(cwd: Path) -> list[Path]:
    return sorted(p for p in (cwd / "results" / "supernets").iterdir() if p.is_dir())


@pytest.mark.slow
def test_trains_once_logs_one_run_and_a_second_command_reuses_the_weights(tmp_path: Path) -> None:
    first = run_cli_in_process(main, [*TINY, "logger=wandb"], tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    (folder,) = _folders(tmp_path)
    line = first.stdout.strip().splitlines()[-1]
    assert line.startswith(f"supernet {folder.name}: trained, 2 epochs") and line.endswith(
        f"results/supernets/{folder.name}"
    )
    weights = folder / "supernet.pt"
    assert weights.is_file() and not (folder / "checkpoint.pt").exists()
    (run,) = read_runs(folder / "wandb")
    assert [row["epoch"] for row in run.history] == [1, 2]
    assert {"train/loss", "val/accuracy/largest", "val/accuracy/smallest", "val/accuracy/probe0"} <= set(run.history[0])
    assert run.summary["epochs"] == 2 and run.config["supernet"]["distill"] is True
    stamp = weights.stat().st_mtime_ns
    again = run_cli_in_process(main, [*TINY, "logger=wandb"], tmp_path)
    assert again.returncode == 0 and f"supernet {folder.name}: found trained, 2 epochs" in again.stdout
    assert weights.stat().st_mtime_ns == stamp and len(read_runs(folder / "wandb")) == 1  # nothing trained
    other = run_cli_in_process(main, [*TINY, "logger=none", "supernet.distill=false"], tmp_path)
    assert other.returncode == 0 and len(_folders(tmp_path)) == 2  # another recipe, another key


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("supernet.budgets=[2.0,1.0]", "supernet.budgets=[2.0, 1.0]: needs [low, high] multiples of supernet.macs"),
        ("supernet.epochs=0", "supernet.epochs=0: must be > 0"),
        ("supernet.random_subnets=-1", "supernet.random_subnets=-1: must be >= 0"),
        ("supernet.epoch=3", "supernet.epoch"),
    ],
)
def test_a_bad_setting_is_one_line_and_trains_nothing(tmp_path: Path, override: str, message: str) -> None:
    proc = run_cli_in_process(main, [*TINY, "logger=none", override], tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "results" / "supernets").exists() or not _folders(tmp_path)


@pytest.mark.slow
def test_ctrl_c_keeps_the_last_epoch_and_the_same_command_resumes_from_it(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "search.apps.supernet", *TINY, "supernet.epochs=6", "logger=none"]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=search_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 240
    while not list((tmp_path / "results" / "supernets").glob("*/checkpoint.pt")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in out + err, out + err
    line = err.strip().splitlines()[-1]
    assert line.startswith("stopped by Ctrl-C (SIGINT); supernet ") and "saved in" in line, line
    assert line.endswith("the same command resumes it"), line
    saved = int(line.split(": epoch ")[1].split()[0])
    assert 1 <= saved < 6
    resumed = subprocess.run(argv, cwd=tmp_path, env=search_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming after epoch {saved} of 6" in resumed.stdout + resumed.stderr
    trained_now = [ln for ln in (resumed.stdout + resumed.stderr).splitlines() if " epoch " in ln and "/6: loss" in ln]
    assert len(trained_now) == 6 - saved  # only the epochs after the saved one
    assert ": trained, 6 epochs" in resumed.stdout
