"""End to end through the CLI on synthetic data: budget, W&B runs, resume, result files."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import yaml

import space
from search.apps.report import main as report_main
from search.optimize.status import counts, tally
from tests.search.conftest import run_search_in_process
from tests.search.wandb_records import OfflineRun, read_runs

BUDGET = 2_000_000  # about 40% of the default ranges' networks at 8x8 fit
COMMON = [
    "data=synthetic",
    "data.n_samples=256",
    "train.epochs=2",
    "train.batch_size=32",
    f"budget.macs={BUDGET}",
    "search.n_startup_trials=4",
    "study.name=e2e",
    "progress=false",
]


@dataclass
class Runs:
    directory: Path
    first: list[optuna.trial.FrozenTrial]
    first_runs: list[OfflineRun]
    study: optuna.Study
    runs: list[OfflineRun]
    runs_after_second: int
    third_stdout: str


def _load(directory: Path) -> optuna.Study:
    return optuna.load_study(study_name="e2e", storage=f"sqlite:///{directory / 'study.db'}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    cwd = tmp_path_factory.mktemp("e2e")
    directory = cwd / "results" / "e2e"
    # in this process: the study and its files are the subject (the CLI as a process: test_workers, test_kills)
    run_search_in_process([*COMMON, "search.n_trials=5"], cwd)
    first = _load(directory).get_trials()
    first_runs = read_runs(directory / "wandb")
    run_search_in_process([*COMMON, "search.n_trials=6"], cwd)
    after_second = len(read_runs(directory / "wandb"))
    third = run_search_in_process([*COMMON, "search.n_trials=6"], cwd)
    return Runs(
        directory, first, first_runs, _load(directory), read_runs(directory / "wandb"), after_second, third.stdout
    )


def _status(t: optuna.trial.FrozenTrial) -> str:
    return t.user_attrs.get("status", t.state.name.lower())


@pytest.mark.slow
def test_infeasible_trials_are_recorded_but_never_trained(runs: Runs) -> None:
    trials = runs.study.get_trials()
    infeasible = [t for t in trials if _status(t) == "infeasible"]
    trained = [t for t in trials if _status(t) in ("complete", "pruned")]
    assert infeasible and trained, [_status(t) for t in trials]
    run_names = {r.name for r in runs.runs}
    for t in infeasible:
        assert t.user_attrs["macs"] > BUDGET
        assert t.constraints["0"] > 0  # what TPE learns the feasible region from
        assert "train_seconds" not in t.user_attrs and not t.intermediate_values
        assert not any(name.startswith(f"trial-{t.number:04d}-") for name in run_names)
    for t in trained:
        assert t.user_attrs["macs"] <= BUDGET and t.constraints["0"] <= 0


@pytest.mark.slow
def test_each_trained_trial_has_one_wandb_run_with_epoch_history(runs: Runs) -> None:
    by_name = {r.name: r for r in runs.runs}
    trained = [t for t in runs.study.get_trials() if _status(t) in ("complete", "pruned")]
    assert len(runs.runs) == len(trained)
    for t in trained:
        run = by_name[f"trial-{t.number:04d}-{t.user_attrs['key']}"]
        assert run.group == "e2e"
        assert run.config["genotype"] == t.user_attrs["genotype"]
        assert run.config["cost/macs"] == t.user_attrs["macs"]
        epochs = [row["epoch"] for row in run.history]
        assert epochs == list(range(1, t.user_attrs["epochs"] + 1))
        for row in run.history:
            assert {"train/loss", "val/accuracy", "lr", "epoch_seconds"} <= set(row)
        assert [row["val/accuracy"] for row in run.history] == [t.intermediate_values[e] for e in epochs]
        assert run.summary["state"] == _status(t) and run.summary["macs"] == t.user_attrs["macs"]
        # the learning rate and weight decay this trial trained with, never train.*'s unused default
        values = t.user_attrs["hyperparameters"]
        assert run.config["hyperparameters"] == values and set(values) == {"train.lr", "train.weight_decay"}
        assert {k: run.config["train"][k.removeprefix("train.")] for k in values} == values
        if t.user_attrs.get("warm_start"):  # the hand design trains with its recipe's values
            assert run.config["train"]["lr"] == 0.05 and run.config["searched"] == {}
        else:
            assert run.config["train"]["lr"] == t.params["train.lr"]
            assert run.config["searched"] == {
                "train.lr": "tag(log, interval(0.01, 0.2))",
                "train.weight_decay": "tag(log, interval(1e-05, 0.001))",
            }


@pytest.mark.slow
def test_resume_keeps_finished_trials_and_stops_at_n_trials(runs: Runs) -> None:
    trials = runs.study.get_trials()
    assert tally(runs.first) == (5, 0, 0)  # n_trials counts trained networks, not over-budget draws
    assert tally(trials) == (6, 0, 0)
    assert counts(trials[-1])  # the search stops on the trial that fills n_trials
    for before, after in zip(runs.first, trials):
        assert (after.number, after.state, after.value, after.params) == (
            before.number,
            before.state,
            before.value,
            before.params,
        )
    # The third run found 6 finished trials: it trained nothing and logged no new run.
    assert len(runs.runs) == runs.runs_after_second
    assert {r.name for r in runs.first_runs} <= {r.name for r in runs.runs}


@pytest.mark.slow
def test_result_files_match_the_study(runs: Runs) -> None:
    with open(runs.directory / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    trials = runs.study.get_trials()
    assert [int(r["number"]) for r in rows] == [t.number for t in trials]
    for row, t in zip(rows, trials):
        assert row["state"] == _status(t) and row["key"] == t.user_attrs["key"]
        assert int(row["macs"]) == t.user_attrs["macs"]
        if _status(t) == "complete":
            assert float(row["val_accuracy"]) == pytest.approx(t.value)
    best = max((t for t in trials if _status(t) == "complete"), key=lambda t: t.value)
    assert space.load(runs.directory / "best.yaml") == space.Genotype.from_dict(best.user_attrs["genotype"])
    report = (runs.directory / "report.md").read_text()
    assert f"best trial: #{best.number}" in report
    assert runs.study.user_attrs["test"]["trial"] == best.number
    for plot in ("history.png", "accuracy_vs_cost.png"):
        assert (runs.directory / plot).stat().st_size > 1000
    assert list((runs.directory / ".hydra").glob("*/config.yaml"))  # each run's resolved config beside the results
    assert f"best trial #{best.number}" in runs.third_stdout


@pytest.mark.slow
def test_report_rebuilds_from_the_storage(runs: Runs) -> None:
    csv_path = runs.directory / "trials.csv"
    before = csv_path.read_text()
    csv_path.unlink()
    (runs.directory / "report.md").unlink()
    assert report_main([str(runs.directory)]) == 0
    assert csv_path.read_text() == before
    assert "best trial: #" in (runs.directory / "report.md").read_text()


@pytest.mark.slow
def test_only_the_best_trials_weights_are_kept(runs: Runs) -> None:
    best = max((t for t in runs.study.get_trials() if _status(t) == "complete"), key=lambda t: t.value)
    assert [p.name for p in (runs.directory / "weights").iterdir()] == [f"trial-{best.number:04d}.pt"]


def _dashboard_get(app, path: str) -> dict:
    """One GET through optuna-dashboard's WSGI app: what its web page reads."""
    import io
    import json
    from wsgiref.util import setup_testing_defaults

    environ: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status[0].startswith("200"), (path, status, body[:200])
    return json.loads(body)


@pytest.mark.slow
def test_optuna_dashboard_shows_over_budget_trials_as_infeasible(runs: Runs) -> None:
    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    app = optuna_dashboard.wsgi(f"sqlite:///{runs.directory / 'study.db'}")
    (summary,) = _dashboard_get(app, "/api/studies")["study_summaries"]
    detail = _dashboard_get(app, f"/api/studies/{summary['study_id']}")
    shown = {t["number"]: t for t in detail["trials"]}
    ours = {t.number: _status(t) for t in runs.study.get_trials()}
    assert set(shown) == set(ours)
    infeasible = [n for n, s in ours.items() if s == "infeasible"]
    assert infeasible
    for number, status in ours.items():
        constraints = shown[number]["constraints"]
        if status == "infeasible":
            assert constraints and max(constraints) > 0, (number, constraints)
        elif status in ("complete", "pruned"):
            assert constraints and max(constraints) <= 0, (number, constraints)


@pytest.mark.slow
def test_report_says_which_hyperparameters_were_searched(runs: Runs) -> None:
    report = (runs.directory / "report.md").read_text()
    assert (
        "- searched settings (search.params): train.lr: `tag(log, interval(0.01, 0.2))`, "
        "train.weight_decay: `tag(log, interval(1e-05, 0.001))`" in report
    )
    assert "- the hand design (trial #0) trains with its recipe's `train.lr=0.05 train.weight_decay=0.0001`" in report
    assert (
        "- fixed training settings: train.epochs=2, train.batch_size=32, train.momentum=0.9, train.schedule=paper"
        in report
    )
    best = next(t for t in runs.study.get_trials() if t.number == int(report.split("best trial: #")[1].split(",")[0]))
    companion = yaml.safe_load((runs.directory / "best_hyperparameters.yaml").read_text())
    assert companion == best.user_attrs["hyperparameters"]
    assert f"#   train.lr={companion['train.lr']:.4g}" in (runs.directory / "best_hyperparameters.yaml").read_text()
