"""Shared fixtures and oracles for the test suite."""

from __future__ import annotations

import os
import shlex
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

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


# The project's commands that train networks, as `python -m <module>`, console scripts, or bench
# scripts. A test that starts one as a new process pays an interpreter, torch and Hydra (seconds)
# before anything trains: it is an end-to-end run, marked slow, outside the inner loop. Only
# asking a command for its help or config (the flags below) is not.
TRAINING_MODULES = {
    "search",
    "search.apps.search",
    "search.apps.ablate",
    "search.apps.compare",
    "search.apps.benchmark",
    "search.apps.supernet",
}
TRAINING_SCRIPTS = {
    "inception-search",
    "inception-ablate",
    "inception-compare",
    "inception-benchmark",
    "inception-supernet",
}
PRINT_ONLY = {"--help", "-h", "--cfg", "--info", "--hydra-help"}


def training_command(args: object) -> str | None:
    """The command line, where `args` (as given to subprocess) starts one of the project's
    training commands or a bench script; None otherwise."""
    argv = shlex.split(args) if isinstance(args, str) else [os.fspath(a) for a in args]  # type: ignore[union-attr]
    if not argv or PRINT_ONLY & set(argv):
        return None
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else None
    script = next((a for a in argv[:2] if a.endswith(".py") and Path(a).parent.name == "bench"), None)
    if module in TRAINING_MODULES or Path(argv[0]).name in TRAINING_SCRIPTS or script is not None:
        return shlex.join(argv)
    return None


class _Guard:
    """subprocess.Popen that refuses a training command (installed while an unmarked test, or a
    fixture it asks for, runs: an assertion on what a test starts, never on a clock)."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.real = subprocess.Popen.__init__

    def __enter__(self) -> None:
        guard = self

        def init(popen: subprocess.Popen, args: object, *rest: object, **kwargs: object) -> None:
            command = training_command(args)
            if command is not None:
                raise AssertionError(
                    f"{guard.nodeid} starts a training command as a process ({command[:200]}): "
                    "mark the test @pytest.mark.slow, or call the command's main() in-process "
                    "(tests/search/conftest.py: run_cli_in_process)"
                )
            guard.real(popen, args, *rest, **kwargs)  # type: ignore[arg-type]

        subprocess.Popen.__init__ = init  # type: ignore[method-assign]

    def __exit__(self, *_: object) -> None:
        subprocess.Popen.__init__ = self.real  # type: ignore[method-assign]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("slow"):
        yield
        return
    with _Guard(item.nodeid):  # module fixtures are built here: a trained study started as a CLI counts
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("slow"):
        yield
        return
    with _Guard(item.nodeid):
        yield


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
