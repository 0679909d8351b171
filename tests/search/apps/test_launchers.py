"""Hydra launchers: the shipped SLURM (submitit) and local (joblib) configs, and submitit's local
executor, which runs the code path SLURM jobs run, with two jobs joining one study."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from search.optimize.status import tally
from tests.search.conftest import run_search, search_env


@pytest.mark.parametrize(
    ("launcher", "target", "setting"),
    [
        ("slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", "gpus_per_node: 1"),
        ("local", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs: 2"),
    ],
)
def test_shipped_launcher_configs_compose(launcher: str, target: str, setting: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "search", "--cfg", "hydra", "--package", "hydra.launcher", f"hydra/launcher={launcher}"],
        cwd=tmp_path,
        env=search_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"_target_: {target}" in proc.stdout and setting in proc.stdout


@pytest.mark.slow
def test_submitit_local_jobs_join_one_study_and_stop_at_n_trials(tmp_path: Path) -> None:
    """Two submitit jobs that differ only in `search.worker` are two workers of one study."""
    args = [
        "-m",
        "hydra/launcher=submitit_local",
        "search.worker=0,1",
        "train.threads=1",  # two jobs on two cores: one thread each
        "data=synthetic",
        "data.n_samples=256",
        "train.epochs=1",
        "budget.mode=project",
        "search.n_trials=6",
        "logger=none",
        "progress=false",
        "study.name=joined",
    ]
    run_search(args, tmp_path)
    sweep = tmp_path / "results" / "joined"
    (study_dir,) = [p for p in sweep.iterdir() if (p / "study.db").is_file()]  # one folder, one database
    results = sorted((sweep / ".submitit").glob("*/*_result.pkl"))
    assert len(results) == 2  # two jobs ran through submitit
    study = optuna.load_study(study_name=f"joined/{study_dir.name}", storage=f"sqlite:///{study_dir / 'study.db'}")
    assert tally(study.get_trials()) == (6, 0, 0)
    log = (study_dir / "search.log").read_text()
    assert "counted trials" in log and (study_dir / "report.md").is_file()
