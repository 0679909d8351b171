"""Scoring with the supernet: exact batch-norm recalibration on the stand-alone subnet, and a
score that leaves the shared weights untouched."""

from __future__ import annotations

import torch

import space
from search.data.sources import data_config, load_data
from search.training.supernet import calibration_batches, recalibrate, score
from space.ranges import RandomDraw, Ranges, sample
from space.supernet import Supernet, supernet_space


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
    batches = calibration_batches(data, batches=2, batch_size=32)
    scores = [score(supernet, sample(RandomDraw(seed), Ranges(), base), data, batches) for seed in range(3)]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert all(torch.equal(before[k], v) for k, v in supernet.state_dict().items())
    again = score(supernet, sample(RandomDraw(0), Ranges(), base), data, batches)
    assert again == scores[0]  # the same batches, the same statistics: the same score
