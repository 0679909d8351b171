"""The supernet's training and scoring: the sandwich rule learns, a fit resumed from an epoch's
state ends where an uninterrupted one does, recalibration is exact on the stand-alone subnet,
and a score leaves the shared weights untouched."""

from __future__ import annotations

import io

import pytest
import torch

import space
from search.budget.supernet import Sandwich, supernet_for_budgets
from search.config.schema import BudgetConfig, TrainConfig
from search.data.sources import data_config, load_data
from search.training.supernet import calibration_batches, fit_supernet, recalibrate, score
from search.training.trainer import Trainer
from space.ranges import RandomDraw, Ranges, sample
from space.supernet import Supernet, supernet_space

BUDGET = BudgetConfig(macs=1_000_000, mode="project")


def _data_and_supernet():
    data = load_data(data_config("synthetic", n_samples=256))
    base = space.preset(
        "googlenet-small",
        resolution=data.resolution,
        in_channels=data.channels,
        num_classes=data.num_classes,
        aux={"head": {"pool": "adaptive", "size": 2}},
    )
    torch.manual_seed(0)
    return data, base, Supernet(supernet_space(Ranges(), base))


def test_recalibration_is_the_exact_mean_and_variance_over_the_batches() -> None:
    data, base, supernet = _data_and_supernet()
    net = supernet.subnet(base)
    batches = calibration_batches(data, batches=3, batch_size=16)
    assert [len(x) for x in batches] == [16, 16, 16]
    recalibrate(net, batches)
    first = net.stem[0]  # the stem's first conv block: conv, batch norm, ReLU
    outputs = [first[0](x) for x in batches]
    mean = torch.stack([o.mean(dim=(0, 2, 3)) for o in outputs]).mean(0)
    var = torch.stack([o.var(dim=(0, 2, 3), unbiased=True) for o in outputs]).mean(0)
    assert torch.allclose(first[1].running_mean, mean, atol=1e-5)
    assert torch.allclose(first[1].running_var, var, atol=1e-4)
    assert not net.training and first[1].momentum == 0.1  # as it was


def test_a_score_is_an_accuracy_and_leaves_the_supernet_as_it_was() -> None:
    data, base, supernet = _data_and_supernet()
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    trainer = Trainer(TrainConfig(epochs=1), data)
    batches = calibration_batches(data, batches=2, batch_size=32, trainer=trainer)
    scores = [score(supernet, sample(RandomDraw(seed), Ranges(), base), trainer, batches) for seed in range(3)]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert all(torch.equal(before[k], v) for k, v in supernet.state_dict().items())
    again = score(supernet, sample(RandomDraw(0), Ranges(), base), trainer, batches)
    assert again == scores[0]  # the same batches, the same statistics: the same score


def _fit(data, base, epochs: int, *, distill: bool = True, lr: float = 0.05, **kwargs):
    ranges = Ranges()
    torch.manual_seed(0)
    trainer = Trainer(TrainConfig(epochs=epochs, batch_size=64, lr=lr, schedule="cosine"), data)
    supernet = trainer.prepare(Supernet(supernet_for_budgets(ranges, base, BUDGET, (0.5, 1.0))))
    draws = Sandwich(ranges, base, BUDGET, (0.5, 1.0), seed=0)
    probes = {"largest": draws.largest, "smallest": draws.smallest}
    calibration = calibration_batches(data, batches=2, batch_size=64, trainer=trainer)
    history = fit_supernet(
        supernet, trainer, draws, random_subnets=1, distill=distill, probes=probes, calibration=calibration, **kwargs
    )
    return history, supernet


@pytest.mark.slow
def test_the_sandwich_rule_trains_every_subnet_and_resumes_where_it_stopped() -> None:
    data, base, _ = _data_and_supernet()
    states = []

    def save(state) -> None:  # through torch.save/torch.load(weights_only=True), as on disk
        buffer = io.BytesIO()
        torch.save(state, buffer)
        states.append(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))

    full, supernet = _fit(data, base, 3, on_checkpoint=save)
    assert [h.epoch for h in full] == [1, 2, 3] and [s["epoch"] for s in states] == [1, 2, 3]
    assert full[-1].loss < full[0].loss  # the largest learns
    assert all(h.probes["largest"] > 0.25 and h.probes["smallest"] > 0.25 for h in full[1:])  # 4 classes
    resumed, again = _fit(data, base, 3, resume=states[0])  # as a kill after epoch 1 leaves it
    assert [h.loss for h in resumed] == [h.loss for h in full]
    assert [h.probes for h in resumed] == [h.probes for h in full]
    for (name, a), b in zip(supernet.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name


def test_without_distillation_each_subnet_learns_the_labels() -> None:
    """At a learning rate of 0 both fits see the same weights, batches and subnets: the
    largest's loss is the labels' cross-entropy either way, the others' is not."""
    data, base, _ = _data_and_supernet()
    with_labels, _ = _fit(data, base, 1, distill=False, lr=0.0)
    distilled, _ = _fit(data, base, 1, distill=True, lr=0.0)
    assert with_labels[0].loss == distilled[0].loss
    assert with_labels[0].distill_loss > 1.0  # cross-entropy of an untrained 4-class net: about log 4
    assert 0.0 <= distilled[0].distill_loss < 0.5  # KL to a teacher as untrained as the student


def test_channel_sorting_after_each_epoch_keeps_training_and_its_momentum_aligned() -> None:
    """Sorting reorders weights between epochs; their momentum is reordered with them, so the
    widest network's loss goes on falling as without sorting."""
    data, base, _ = _data_and_supernet()
    history, supernet = _fit(data, base, 2, sort_channels=True)
    assert history[1].loss < history[0].loss and all(h.probes["largest"] > 0.25 for h in history)
    block = supernet.blocks["3a"]
    importance = block.conv3.conv.weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(importance[:-1] >= importance[1:])  # sorted after the last epoch
