"""Logs a person can follow: one line per finished trial (every worker's) in search.log, a line
per epoch once a trial runs long, and no progress-bar frames where output is not a terminal."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from search.optimize.status import status
from tests.search.conftest import run_search, run_search_in_process

TRIAL_LINE = re.compile(r"\] - trial (\d+) (\w+), (?:(\d+\.\d\d) MMACs, )?(.*)$")


@pytest.mark.slow
def test_search_log_has_a_line_per_finished_trial_and_no_carriage_returns(tmp_path: Path) -> None:
    proc = run_search(
        [
            "data=synthetic",
            "data.n_samples=256",
            "search.n_trials=5",
            "search.n_workers=2",
            "train.epochs=2",
            "budget.mode=constraint",
            "logger=none",
            "study.name=logs",
            "progress=true",
            "search.log_epochs_after=0",
        ],
        tmp_path,
    )
    directory = tmp_path / "results" / "logs"
    text = (directory / "search.log").read_text()
    assert "\r" not in text and "\r" not in proc.stderr + proc.stdout  # progress=true, but not a terminal
    study = optuna.load_study(study_name="logs", storage=f"sqlite:///{directory / 'study.db'}")
    finished = {t.number: t for t in study.get_trials() if t.state.is_finished()}
    lines = {int(m[1]): m for m in map(TRIAL_LINE.search, text.splitlines()) if m}
    assert set(lines) == set(finished)  # spawned worker 1's trials too
    assert len([line for line in text.splitlines() if TRIAL_LINE.search(line)]) == len(finished)  # once each
    for number, m in lines.items():
        t = finished[number]
        assert m[2] == status(t)
        if "macs" in t.user_attrs:  # not a surplus trial, which a second worker can start at the end
            assert float(m[3]) == round(t.user_attrs["macs"] / 1e6, 2)
        else:
            assert m[3] is None and m[2] == "surplus", m[0]
        if m[2] == "complete":
            assert f"val {t.value:.4f} after {t.user_attrs['epochs']} epochs" in m[4] and m[4].endswith(" s")
            lr = t.user_attrs["hyperparameters"]["train.lr"]
            assert f"train.lr={lr:.4g} train.weight_decay=" in m[4]  # the searched values it trained with
        if m[2] == "infeasible":
            assert "over budget, not trained" in m[4]
    # epoch lines (search.log_epochs_after=0: every epoch), from this process and worker 1's log
    epochs = text + (directory / "workers" / "worker-1.log").read_text()
    for t in finished.values():
        for epoch in range(1, t.user_attrs.get("epochs", 0) + 1):
            assert f"trial {t.number} epoch {epoch}/2: loss " in epochs


@pytest.mark.slow
def test_short_trials_log_no_epoch_lines_by_default(tmp_path: Path) -> None:
    run_search_in_process(
        [
            "data=synthetic",
            "data.n_samples=128",
            "search.n_trials=2",
            "train.epochs=2",
            "logger=none",
            "study.name=quiet",
        ],
        tmp_path,
    )
    text = (tmp_path / "results" / "quiet" / "search.log").read_text()
    assert " epoch 1/2" not in text
    assert sum(1 for line in text.splitlines() if TRIAL_LINE.search(line)) >= 2
