"""No training thrown away: the pruner decides after every epoch but the last, and report.md
counts where it stopped trials."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest

from search.optimize.objective import Objective, _Training
from search.optimize.status import Status
from search.reports.study import _pruned_line
from search.training.trainer import EpochResult


class _AlwaysPrune:
    """A trial whose pruner would stop it at every report."""

    def __init__(self) -> None:
        self.number = 7
        self.reports: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return True


class _Run:
    def log(self, metrics: dict[str, Any], step: int) -> None:
        pass


def _on_epoch(epochs: int, epoch: int) -> _AlwaysPrune:
    objective = Objective.__new__(Objective)  # only what _on_epoch reads
    objective.cfg = SimpleNamespace(search=SimpleNamespace(log_epochs_after=None))  # type: ignore[assignment]
    trial = _AlwaysPrune()
    t = _Training(trial, None, _Run(), {}, [], epochs=epochs)  # type: ignore[arg-type]
    objective._on_epoch(t, EpochResult(epoch=epoch, train_loss=0.5, val_accuracy=0.8))
    return trial


def test_the_pruner_decides_after_every_epoch_but_the_last() -> None:
    for epoch in (1, 2):
        with pytest.raises(optuna.TrialPruned, match=f"pruned after epoch {epoch}"):
            _on_epoch(3, epoch)
    trial = _on_epoch(3, 3)  # all its training paid for: it completes
    assert trial.reports == [(0.8, 3)]  # still reported: the pruner learns from it


def test_report_counts_pruned_trials_per_epoch(tmp_path: Path) -> None:
    rows = [
        {"state": Status.PRUNED, "epochs": 1},
        {"state": Status.PRUNED, "epochs": 2},
        {"state": Status.PRUNED, "epochs": 1},
        {"state": Status.COMPLETE, "epochs": 3},
    ]
    assert _pruned_line(rows) == [
        "- pruned: 3 (2 after epoch 1, 1 after epoch 2; a trial that trained all its epochs is never pruned)"
    ]
    assert _pruned_line(rows[3:]) == []
