from __future__ import annotations

import pytest
import torch

import space
from search.config import Config, DataConfig, TrainConfig
from search.data import load_data
from search.study import base_genotype
from search.train import Trainer, TrainingDiverged


@pytest.fixture(scope="module")
def data():
    return load_data(DataConfig(name="synthetic", n_samples=1024))


def _genotype(data) -> space.Genotype:
    return base_genotype(Config(), data)


def test_learns_and_is_deterministic(data) -> None:
    cfg = TrainConfig(epochs=2, batch_size=32)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        history, _ = Trainer(cfg, data).fit(space.build_model(_genotype(data)), lr=0.05, weight_decay=1e-4, aux_weight=0.3)
        runs.append(history)
    assert runs[0][-1].val_accuracy > 0.5  # 4 classes: chance is 0.25
    assert [r.train_loss for r in runs[0]] == [r.train_loss for r in runs[1]]
    assert set(runs[0][0].aux_losses) == {"4a", "4d"}


def test_paper_schedule_decays_every_eight_epochs(data) -> None:
    trainer = Trainer(TrainConfig(epochs=20), data)
    assert [trainer._lr_factor(e) for e in (0, 7, 8, 16)] == [1.0, 1.0, 0.96, 0.96**2]
    cosine = Trainer(TrainConfig(epochs=10, schedule="cosine"), data)
    assert cosine._lr_factor(0) == 1.0 and cosine._lr_factor(5) == pytest.approx(0.5)


def test_divergence_raises(data) -> None:
    with pytest.raises(TrainingDiverged, match="became"):
        Trainer(TrainConfig(epochs=2, batch_size=32), data).fit(
            space.build_model(_genotype(data)), lr=1e7, weight_decay=0.0, aux_weight=0.3
        )


def test_aux_heads_are_dropped_at_evaluation(data) -> None:
    trainer = Trainer(TrainConfig(epochs=1, batch_size=32), data)
    model = trainer.prepare(space.build_model(_genotype(data)))
    calls = []
    for head in model.aux.values():
        head.register_forward_hook(lambda *_: calls.append(1))
    trainer.evaluate(model, "val")
    assert calls == []
