"""A diverging or out-of-memory trial fails with its reason stored; the study goes on."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch

from search.config.schema import Config, LoggerConfig, SearchConfig, TrainConfig
from search.data.sources import data_config
from search.experiments.run import run_study
from search.training.trainer import Trainer


def _cfg(**params: str) -> Config:
    return Config(
        search=SearchConfig(
            n_trials=3,
            pruner="none",
            n_startup_trials=2,
            warm_start=False,
            params={"train.weight_decay": None, **params},
        ),
        data=data_config("synthetic", n_samples=256),
        train=TrainConfig(epochs=1, batch_size=32),
        logger=LoggerConfig(name="none"),
        progress=False,
    )


def _study(cfg: Config, directory: Path) -> list[optuna.trial.FrozenTrial]:
    cfg.budget.macs = 10**12  # everything fits: only training can fail
    result = run_study(cfg, "fail", directory)
    return result.study.get_trials()


@pytest.mark.slow
def test_nan_loss_fails_the_trial_and_the_study_continues(tmp_path: Path) -> None:
    trials = _study(_cfg(**{"train.lr": "tag(log, interval(1e6, 1e7))"}), tmp_path)
    assert len(trials) == 3
    for t in trials:
        assert t.state == optuna.trial.TrialState.FAIL
        assert "became" in t.user_attrs["fail_reason"] and t.user_attrs["status"] == "failed"
    assert (tmp_path / "trials.csv").read_text().count("failed") == 3


def test_out_of_memory_fails_one_trial_and_the_study_continues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fit = Trainer.fit
    calls = []

    def fit_that_runs_out_of_memory_once(self, model, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_fit(self, model, **kwargs)

    monkeypatch.setattr(Trainer, "fit", fit_that_runs_out_of_memory_once)
    trials = _study(_cfg(), tmp_path)
    states = [t.state for t in trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 1 and len(trials) == 3
    failed = next(t for t in trials if t.state == optuna.trial.TrialState.FAIL)
    assert failed.user_attrs["fail_reason"] == "CUDA out of memory"
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2
