"""search.strategy=supernet end to end, with two workers: candidates scored through one supernet
(one file, read by each worker) in their own study, the top-k by score trained on their own and
confirmed, the three rankings in report.md, the candidates as one W&B table; the same command
resumes without scoring or training again, and a search at another budget inside the
supernet's range reuses it."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.apps.search import main
from search.optimize.status import Status, status
from search.reports.supernet_search import SUPERNET_ATTR, candidates_name
from tests.search.conftest import run_cli_in_process
from tests.search.wandb_records import read_runs

SEARCH = [
    "data=synthetic",
    "data.n_samples=256",
    "data.subset=null",
    "data.val_size=null",
    "data.val_epoch_size=null",
    "budget.macs=1000000",
    "search.strategy=supernet",
    "search.n_trials=24",
    "search.n_workers=2",  # a second worker process scores beside this one, from the same supernet file
    "search.train_top_k=2",
    "search.confirm.top_k=1",
    "search.confirm.seeds=[1]",
    "search.confirm.epochs=2",
    "train.epochs=1",
    "train.batch_size=64",
    "supernet.epochs=1",
    "supernet.calibration_batches=1",
    "supernet.calibration_batch_size=32",
    "supernet.score_images=64",
    "supernet.probes=0",
]


def _study(cwd: Path, name: str, folder: str = "synthetic") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{cwd / 'results' / folder / 'study.db'}")


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    cwd = tmp_path_factory.mktemp("supernet-search")
    proc = run_cli_in_process(main, [*SEARCH, "logger=wandb"], cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return cwd, proc.stdout + proc.stderr


@pytest.mark.slow
def test_candidates_are_scored_trials_with_their_cost_in_the_storage_and_a_csv(searched: tuple[Path, str]) -> None:
    cwd, _ = searched
    candidates = _study(cwd, candidates_name("synthetic"))
    scored = [t for t in candidates.get_trials() if status(t) == Status.COMPLETE]
    assert len(scored) == 24 and all(t.user_attrs["scored_by"] for t in scored)
    for t in scored:
        assert {"genotype", "key", "macs", "params", "score_seconds"} <= set(t.user_attrs)
        assert 0.0 <= t.value <= 1.0 and t.user_attrs["macs"] <= 1_000_000
        assert not any(name.startswith("train.") for name in t.params)  # a supernet scores architectures only
    with open(cwd / "results" / "synthetic" / "candidates" / "trials.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["state"] == "complete"]
    assert {int(r["number"]): float(r["supernet_score"]) for r in rows} == {t.number: t.value for t in scored}
    assert all(r["val_accuracy"] == "" for r in rows)  # a score is not a trained accuracy
    log = (cwd / "results" / "synthetic" / "candidates" / "workers" / "worker-1.log").read_text()
    assert "trained before" in log and "loaded from" in log  # the second worker read the supernet's file


@pytest.mark.slow
def test_the_top_k_by_score_are_trained_on_their_own_and_confirmed(searched: tuple[Path, str]) -> None:
    cwd, _ = searched
    candidates = _study(cwd, candidates_name("synthetic"))
    study = _study(cwd, "synthetic")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    hand = next(t for t in trials if t.user_attrs.get("warm_start"))
    queued = [t for t in trials if "candidate" in t.user_attrs]
    others = [
        t for t in candidates.get_trials(states=(TrialState.COMPLETE,)) if t.user_attrs["key"] != hand.user_attrs["key"]
    ]
    best_two = sorted(others, key=lambda t: (-t.value, t.number))[:2]
    assert [t.user_attrs["candidate"] for t in queued] == [t.number for t in best_two]
    for trained, candidate in zip(queued, best_two):
        assert trained.user_attrs["key"] == candidate.user_attrs["key"]  # the same network, drawn again
        assert trained.user_attrs["supernet_score"] == candidate.value
        assert status(trained) == Status.COMPLETE and trained.user_attrs["epochs"] == 1
    info = study.user_attrs[SUPERNET_ATTR]
    assert info["scored"] == 24 and info["queued"] == [t.number for t in best_two] and not info["supernet_cached"]
    assert study.user_attrs["confirmed"]["trials"] == [max(queued, key=lambda t: (t.value, -t.number)).number]
    report = (cwd / "results" / "synthetic" / "report.md").read_text()
    assert "## Supernet search" in report and "## Confirmation" in report
    for t in best_two:
        assert f"| #{t.number} |" in report and f"{t.value:.4f} (" in report


@pytest.mark.slow
def test_wandb_holds_the_supernet_run_one_table_of_candidates_and_a_run_per_trained_network(
    searched: tuple[Path, str],
) -> None:
    cwd, _ = searched
    folder = cwd / "results" / "synthetic"
    (table,) = read_runs(folder / "candidates" / "wandb")
    assert table.summary["candidates"] == 24 and table.name == f"{candidates_name('synthetic')}-table"
    trained = [r.name for r in read_runs(folder / "wandb")]
    assert sum(name.startswith("trial-") for name in trained) == 3  # the hand design and the top 2
    (supernet,) = list((cwd / "results" / "supernets").iterdir())
    assert len(read_runs(supernet / "wandb")) == 1


@pytest.mark.slow
def test_the_same_command_resumes_and_another_budget_in_range_reuses_the_supernet(searched: tuple[Path, str]) -> None:
    cwd, _ = searched
    one = "search.n_workers=1"  # the fixture's run showed two workers; a second process here only costs start-up
    again = run_cli_in_process(main, [*SEARCH, "logger=none", one], cwd)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "trained before" in again.stderr + again.stdout
    assert len(_study(cwd, candidates_name("synthetic")).get_trials()) == len(
        _study(cwd, candidates_name("synthetic")).get_trials(states=(TrialState.COMPLETE, TrialState.FAIL))
    )
    assert len([t for t in _study(cwd, "synthetic").get_trials() if t.user_attrs.get("epochs")]) == 3  # nothing new
    other = run_cli_in_process(
        main, [*SEARCH, "logger=none", one, "budget.macs=1500000", "study.name=at-1.5M", "search.n_trials=8"], cwd
    )
    assert other.returncode == 0, other.stdout + other.stderr
    assert len(list((cwd / "results" / "supernets").iterdir())) == 1  # [0.5, 2] x 1M holds 1.5M: reused
    study = _study(cwd, "at-1.5M", folder="at-1.5M")
    assert study.user_attrs[SUPERNET_ATTR]["supernet_cached"]
    assert all(t.user_attrs["macs"] <= 1_500_000 for t in study.get_trials() if "macs" in t.user_attrs)
