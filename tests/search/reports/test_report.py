"""Reports: the Pareto front, and `search.reports.study` over a search multirun folder."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from search.apps.report import main as report_main
from search.reports.study import pareto_front
from tests.search.conftest import run_search_in_process


def test_pareto_front_keeps_cheapest_for_each_accuracy_gain() -> None:
    points = [(3.0, 0.9), (1.0, 0.8), (2.0, 0.7), (2.5, 0.95), (1.0, 0.85)]
    assert pareto_front(points) == [(1.0, 0.85), (2.5, 0.95)]


@pytest.mark.slow
def test_report_aggregates_a_search_multirun_into_one_table(tmp_path: Path) -> None:
    run_search_in_process(
        [
            "-m",
            "data=synthetic",
            "data.n_samples=256",
            "search.n_trials=2",
            "train.epochs=1",
            "logger=none",
            "study.name=sweep",
            "budget.macs=1500000,2500000",
            "progress=false",
        ],
        tmp_path,
    )
    sweep = tmp_path / "results" / "sweep"
    jobs = sorted(p.parent for p in sweep.glob("*/study.db"))
    assert len(jobs) == 2
    assert report_main([str(sweep)]) == 0
    with open(sweep / "studies.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["study"] for r in rows] == [j.name for j in jobs]
    for row, job in zip(rows, jobs):
        (summary,) = optuna.get_all_study_summaries(f"sqlite:///{job / 'study.db'}", include_best_trial=False)
        study = optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{job / 'study.db'}")
        best = max(
            (t for t in study.trials if t.user_attrs.get("status") == "complete"), key=lambda t: (t.value, -t.number)
        )
        assert int(row["best_trial"]) == best.number and float(row["val_accuracy"]) == round(best.value, 4)
        assert float(row["test_accuracy"]) == round(study.user_attrs["test"]["accuracy"], 4)
        assert int(row["macs"]) <= int(job.name.split("budget.macs=")[1].split(",")[0])
    assert "| budget.macs=1500000" in (sweep / "report.md").read_text()


def test_report_on_a_folder_of_nothing_names_every_accepted_form(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "search.apps.report", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert all(form in line for form in ("study.db", "runs/", "*/study.db", "*/summary.csv", "--storage"))


def test_the_front_draws_each_budgets_confirmed_best_beside_the_hand_design(tmp_path) -> None:
    from search.reports.front import FRONT_COLUMNS, draw_front

    def row(budget: int, best: float, hand: float) -> dict:
        found = {k: "" for k in FRONT_COLUMNS}
        found.update(budget_macs=budget, confirmed=best, confirmed_sd=0.002, hand_macs=budget - 10)
        found.update(hand_confirmed=hand, hand_confirmed_sd=0.003, supernet="abc123", macs=budget - 5)
        return found

    rows = [row(1_000_000, 0.86, 0.85), row(2_000_000, 0.88, 0.86), row(4_000_000, 0.89, 0.88)]
    assert draw_front(rows, tmp_path / "front.png") == "front.png"
    assert (tmp_path / "front.png").stat().st_size > 0
    assert draw_front(rows[:1], tmp_path / "one.png") is None  # one budget is not a front
    assert not (tmp_path / "one.png").exists()
