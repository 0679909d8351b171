from __future__ import annotations

import pytest
import torch

import space
from search.config.schema import Config, TrainConfig
from search.data.sources import data_config, load_data
from search.data.splits import base_genotype
from search.training.trainer import Trainer, TrainingDiverged


@pytest.fixture(scope="module")
def data():
    return load_data(data_config("synthetic", n_samples=1024))


def _genotype(data) -> space.Genotype:
    cfg = Config(data=data_config("digits"))
    return base_genotype(cfg.space.base, cfg.space.genotype, data)


def test_learns_and_is_deterministic(data) -> None:
    cfg = TrainConfig(epochs=2, batch_size=32)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        history, _ = Trainer(cfg, data).fit(space.build_model(_genotype(data)), aux_weight=0.3)
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
        Trainer(TrainConfig(epochs=2, batch_size=32, lr=1e7, weight_decay=0.0), data).fit(
            space.build_model(_genotype(data)), aux_weight=0.3
        )


def test_aux_heads_are_dropped_at_evaluation(data) -> None:
    trainer = Trainer(TrainConfig(epochs=1, batch_size=32), data)
    model = trainer.prepare(space.build_model(_genotype(data)))
    calls = []
    for head in model.aux.values():
        head.register_forward_hook(lambda *_: calls.append(1))
    trainer.evaluate(model, "val")
    assert calls == []


def test_each_epochs_state_is_handed_over_before_the_epoch_is_reported(data) -> None:
    """A caller that reports an epoch (to Optuna's storage) already holds a state it can resume
    from: a stop landing between the two calls never loses a reported epoch."""
    calls: list[tuple[str, int]] = []
    Trainer(TrainConfig(epochs=3, batch_size=128), data).fit(
        space.build_model(_genotype(data)),
        aux_weight=0.3,
        on_epoch=lambda r: calls.append(("reported", r.epoch)),
        on_checkpoint=lambda s: calls.append(("state", s["epoch"])),
    )
    assert calls == [("state", 1), ("reported", 1), ("state", 2), ("reported", 2), ("reported", 3)]


@pytest.mark.slow
@pytest.mark.parametrize("augment", [False, True])
def test_a_fit_resumed_from_a_checkpoint_ends_where_an_uninterrupted_one_does(data, augment: bool, tmp_path) -> None:
    """Weights, optimiser momentum, Polyak average (and its warm-up count) and the random stream
    all travel in the checkpoint: through torch.save/torch.load(weights_only=True) as on disk."""
    cfg = TrainConfig(epochs=3, batch_size=64)
    genotype = _genotype(data)

    def fit(**kwargs):
        torch.manual_seed(0)
        return Trainer(cfg, data, augment=augment).fit(space.build_model(genotype), aux_weight=0.3, **kwargs)

    states = []

    def save(state) -> None:
        torch.save(state, tmp_path / f"epoch-{state['epoch']}.pt")
        states.append(state["epoch"])
        # one Polyak update per batch (the warm-up ramp reads this count)
        assert state["ema_steps"] == state["epoch"] * -(-len(data.train) // cfg.batch_size)

    full, full_model = fit(on_checkpoint=save)
    assert states == [1, 2]  # none after the last epoch: the trial is done then
    resume = torch.load(tmp_path / "epoch-1.pt", weights_only=True)
    resumed, resumed_model = fit(resume=resume)
    assert [r.epoch for r in resumed] == [1, 2, 3]
    assert [r.train_loss for r in resumed] == [r.train_loss for r in full]
    assert [r.val_accuracy for r in resumed] == [r.val_accuracy for r in full]
    for (name, a), b in zip(full_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name
