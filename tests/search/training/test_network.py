"""The one training path (search/training/network.py): what a search trial, an ablation run and a
benchmark retraining all call."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from search.config.schema import Config, TrainConfig
from search.data.sources import data_config, load_data
from search.data.splits import base_genotype
from search.training.network import failure_reason, run_key, train_network
from search.training.trainer import Trainer, TrainingDiverged


@pytest.fixture(scope="module")
def data():
    return load_data(data_config("synthetic", n_samples=256))


def _genotype(data):
    cfg = Config(data=data_config("digits"))
    return base_genotype(cfg.space.base, cfg.space.genotype, data)


def test_the_same_seed_trains_the_same_network_and_callbacks_see_every_epoch(data) -> None:
    trainer = Trainer(TrainConfig(epochs=2, batch_size=32), data)
    seen = []
    first = train_network(_genotype(data), trainer, seed=3, on_epoch=seen.append)
    again = train_network(_genotype(data), trainer, seed=3)
    assert first.fail_reason is None and first.model is not None and first.seconds > 0
    assert [r.epoch for r in seen] == [1, 2] and first.val_accuracy == first.history[-1].val_accuracy
    assert [r.train_loss for r in first.history] == [r.train_loss for r in again.history]


def test_a_diverged_network_is_an_outcome_and_a_bug_is_raised(data) -> None:
    diverging = Trainer(TrainConfig(epochs=2, batch_size=32, lr=1e7, weight_decay=0.0), data)
    trained = train_network(_genotype(data), diverging, seed=0)
    assert trained.fail_reason is not None and "became" in trained.fail_reason
    assert trained.model is None and trained.val_accuracy is None

    def bug(_) -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        train_network(_genotype(data), Trainer(TrainConfig(epochs=1, batch_size=32), data), seed=0, on_epoch=bug)
    assert failure_reason(torch.OutOfMemoryError("CUDA out of memory")) == "CUDA out of memory"
    assert failure_reason(TrainingDiverged("train_loss became nan")) == "train_loss became nan"
    assert failure_reason(ValueError("x")) is None


def test_one_run_key_names_what_a_run_trains(data) -> None:
    g, train, cfg = _genotype(data), TrainConfig(), data_config("synthetic")
    key = run_key(g, train, cfg, 0)
    assert len(key) == 12 and key == run_key(g, train, cfg, 0)
    assert key == run_key(g, dataclasses.replace(train, threads=3, device="cpu"), cfg, 0)  # how it executes: not
    assert (
        len(
            {
                key,
                run_key(g, train, cfg, 1),
                run_key(g, dataclasses.replace(train, lr=0.1), cfg, 0),
                run_key(g, train, cfg, 0, hyperparameters={"train.lr": 0.1}),
            }
        )
        == 4
    )
