"""The best confirmed at a higher fidelity (search.confirm), through the CLI on synthetic data:
the top-k and the hand design retrained with other seeds, the best named by that, reported
beside the search's ranking, read by predict/export, and never retrained on a resume."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import torch

from search.optimize.confirm import RUN_PREFIX
from search.optimize.results import CONFIRMED_ATTR, best_trial, top_trials
from search.training.predict import weights_file
from tests.search.conftest import run_search, run_search_in_process
from tests.search.wandb_records import read_runs

ARGS = [
    "data=synthetic",
    "data.n_samples=320",
    "train.epochs=2",
    "train.batch_size=32",
    "budget.macs=2000000",
    "search.n_trials=5",
    "search.pruner=none",
    "search.n_workers=2",  # the search and its confirmation in two processes
    "search.confirm.top_k=2",
    "search.confirm.seeds=[3,4]",
    "search.confirm.epochs=3",
    "study.name=confirm",
    "progress=false",
]


@dataclass
class Confirmed:
    directory: Path
    study: optuna.Study
    first_log: str
    second_log: str


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory: pytest.TempPathFactory) -> Confirmed:
    cwd = tmp_path_factory.mktemp("confirm")
    first = run_search(ARGS, cwd)
    second = run_search_in_process(ARGS, cwd)  # a resume of a finished study (no worker to spawn): nothing trains
    directory = cwd / "results" / "confirm"
    study = optuna.load_study(study_name="confirm", storage=f"sqlite:///{directory / 'study.db'}")
    return Confirmed(directory, study, first.stdout + first.stderr, second.stdout + second.stderr)


@pytest.mark.slow
def test_the_best_is_the_best_confirmed_mean_of_the_top_k(confirmed: Confirmed) -> None:
    study = confirmed.study
    summary = study.user_attrs[CONFIRMED_ATTR]
    top = top_trials(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)), 2)
    assert summary["trials"] == [t.number for t in top]
    hand = next(t for t in study.get_trials() if t.user_attrs.get("warm_start"))
    assert summary["hand"] == hand.number
    confirmed_values = {int(k): v for k, v in summary["values"].items()}
    assert all(len(v) == 2 for v in confirmed_values.values())  # two seeds each, the hand design too
    assert set(confirmed_values) == {t.number for t in top} | {hand.number}
    best = max(summary["trials"], key=lambda n: (statistics.fmean(confirmed_values[n]), -n))
    assert summary["best"] == best and best_trial(study).number == best
    runs = [v for k, v in study.user_attrs.items() if k.startswith(RUN_PREFIX)]
    assert sorted((r["trial"], r["seed"]) for r in runs) == sorted((n, s) for n in confirmed_values for s in (3, 4))


@pytest.mark.slow
def test_predict_and_export_read_the_confirmed_weights(confirmed: Confirmed) -> None:
    best = confirmed.study.user_attrs[CONFIRMED_ATTR]["best"]
    path = weights_file(confirmed.directory)
    assert path == confirmed.directory / "confirmed" / f"trial-{best:04d}.pt"
    saved = torch.load(path, map_location="cpu", weights_only=True)
    assert saved["trial"] == best and "test_accuracy" in saved
    assert saved["val_accuracy"] == confirmed.study.user_attrs[CONFIRMED_ATTR]["values"][str(best)][0]
    test = confirmed.study.user_attrs["test"]
    assert test == {"trial": best, "accuracy": saved["test_accuracy"], "confirmed": True}


@pytest.mark.slow
def test_report_shows_both_rankings_and_the_lead_with_its_spread(confirmed: Confirmed) -> None:
    report = (confirmed.directory / "report.md").read_text()
    assert "## Confirmation" in report
    assert "| search rank | confirmed rank | trial | key | search value (one run) |" in report
    assert "3 epochs" in report and "seeds [3, 4]" in report and "s of training in all" in report
    best = confirmed.study.user_attrs[CONFIRMED_ATTR]["best"]
    assert f"best trial (confirmed): #{best}," in report
    hand_line = next(line for line in report.splitlines() if line.startswith("- hand design"))
    assert "at the confirmation fidelity (mean over 2 seeds; per seed" in hand_line or "is the hand design" in hand_line


@pytest.mark.slow
def test_a_resume_never_trains_a_confirmation_run_again(confirmed: Confirmed) -> None:
    networks = len(confirmed.study.user_attrs[CONFIRMED_ATTR]["values"])  # the top 2 and the hand design
    assert networks in (2, 3) and confirmed.first_log.count("confirm trial") == 2 * networks
    assert "confirm trial" not in confirmed.second_log


@pytest.mark.slow
def test_wandb_logs_each_confirmation_run_in_the_study_group(confirmed: Confirmed) -> None:
    runs = [r for r in read_runs(confirmed.directory / "wandb") if r.name.startswith("confirm-")]
    assert len(runs) == 2 * len(confirmed.study.user_attrs[CONFIRMED_ATTR]["values"])
    assert {r.group for r in runs} == {"confirm"}
