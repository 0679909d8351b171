"""Scoring a genotype with the supernet's weights (issue 33, item 3; its training is still to come).

Inherited batch-norm statistics belong to whatever mix of subnets the supernet last ran, so a
score without recalibration is noise (Once-for-All recomputes them over 2,000 training images
in 10 batches). `recalibrate` recomputes them exactly: running statistics reset, then averaged
with equal weight over a fixed set of training batches (momentum None: a cumulative average),
on the stand-alone subnet, so the shared supernet is never changed by scoring.
"""

from __future__ import annotations

import torch
from torch import nn

from search.data.splits import Splits, minibatch
from space.genotype import Genotype
from space.supernet import Supernet

__all__ = ["calibration_batches", "recalibrate", "score"]


def calibration_batches(data: Splits, *, batches: int, batch_size: int, seed: int = 0) -> list[torch.Tensor]:
    """`batches` batches of training images, the same for every genotype scored (a seeded draw
    without replacement), so that scores differ by network only."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data.train), generator=generator)[: batches * batch_size]
    return [minibatch(data, "train", order[i : i + batch_size])[0] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def recalibrate(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Batch-norm running statistics recomputed from `batches`: each layer's mean and (unbiased)
    variance averaged over the batches with equal weight. Other layers are left as they are."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    model.eval()
    for m in norms:
        m.train()  # batch statistics, accumulated into the running ones; dropout stays off
    for x in batches:
        model(x)
    for m, (momentum, training) in zip(norms, saved):
        m.momentum = momentum
        m.train(training)
    model.eval()


@torch.no_grad()
def score(supernet: Supernet, genotype: Genotype, data: Splits, batches: list[torch.Tensor]) -> float:
    """Validation accuracy of `genotype` with the supernet's weights, after its batch-norm
    statistics are recalibrated over `batches`."""
    net = supernet.subnet(genotype)
    recalibrate(net, batches)
    correct = seen = 0
    for start in range(0, len(data.val), 512):
        index = torch.arange(start, min(start + 512, len(data.val)))
        x, y = minibatch(data, "val", index)
        correct += int((net(x).argmax(dim=1) == y).sum())
        seen += len(y)
    return correct / max(seen, 1)
