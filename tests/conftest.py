"""Shared fixtures and oracles for the test suite."""

from __future__ import annotations

import os
import warnings

import pytest
import torch


def _threads_per_process() -> int:
    """CPU threads for each test process: the cores shared among pytest-xdist's workers, at most
    two. Every CLI a test starts inherits it through OMP_NUM_THREADS. OpenMP pools that together
    ask for more threads than there are cores spin against each other, and a 10-second test then
    takes minutes: on a 2-core machine two workers get one thread each."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, min(2, (os.cpu_count() or 1) // workers))


THREADS = _threads_per_process()
os.environ["OMP_NUM_THREADS"] = str(THREADS)
torch.set_num_threads(THREADS)

# Every test has a timeout (pyproject.toml: 300 s), so a hang fails with a traceback instead of
# eating CI; an end-to-end run (marked slow) gets this much instead.
SLOW_TIMEOUT = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))


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
