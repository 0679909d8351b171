"""Shared fixtures and oracles for the test suite."""

from __future__ import annotations

import warnings

import pytest
import torch

torch.set_num_threads(2)


def fvcore_counts(model: torch.nn.Module, genotype, *, train: bool = False) -> tuple[dict[str, int], int]:
    """fvcore's per-operator counts and total for one image (the independent oracle).

    Training mode uses a batch of two (batch norm needs more than one value per channel) and
    divides by two; every count is linear in the batch size.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

    batch = 2 if train else 1
    model.train(train)
    x = torch.zeros(batch, genotype.in_channels, genotype.resolution, genotype.resolution)
    analysis = FlopCountAnalysis(model, (x,))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_operator = {op: int(n) // batch for op, n in analysis.by_operator().items()}
        total = int(analysis.total()) // batch
    return by_operator, total


@pytest.fixture(scope="session")
def fvcore():
    return fvcore_counts
