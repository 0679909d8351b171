"""Start-up checks that need more than a config value: a device of this machine, an image tree
on disk, a latency table, a proxy's name. Each command runs its config's value checks
(search.config) and then these, before anything is written; every failure is one
`ConfigError` line naming the field and the value.
"""

from __future__ import annotations

from pathlib import Path

import torch

from search.budget.constraints import latency_setting, load_latency_table
from search.config.ablate import AblateConfig, validate_ablate
from search.config.benchmark import BenchmarkConfig, method_configs, validate_benchmark
from search.config.checks import validate
from search.config.common import fail, one_of
from search.config.schema import Config, ConfigError, DataConfig, TrainConfig
from search.data.folder import check_tree
from search.data.sources.folder import FolderData
from search.training.proxies import PROXIES

__all__ = ["check_ablate", "check_benchmark", "check_search", "check_supernet"]


def check_search(cfg: Config) -> None:
    """`inception-search`: values, then this machine and the files the config names."""
    validate(cfg)
    _check_here(train=cfg.train, data=cfg.data)
    _check_prescreen("search.prescreen", cfg.search.prescreen)
    b = cfg.budget
    if b.latency_ms is not None and b.latency_table is not None:  # the table must be this machine's
        load_latency_table(b.latency_table, latency_setting(cfg))


def check_ablate(cfg: AblateConfig) -> None:
    """`inception-ablate` and `inception-compare`."""
    validate_ablate(cfg)
    _check_here(train=cfg.train, data=cfg.data)


def check_benchmark(cfg: BenchmarkConfig) -> None:
    """`inception-benchmark`: the search's checks, and each method's proxy."""
    validate_benchmark(cfg)
    _check_here(train=cfg.train, data=cfg.data)
    for name, method in method_configs(cfg.benchmark).items():
        if method.prescreen is not None and method.prescreen.removeprefix("-") not in PROXIES:
            raise ConfigError(
                f"benchmark.methods.{name}.prescreen={method.prescreen!r}: must be one of {', '.join(PROXIES)}"
            )


def check_supernet(cfg: Config) -> None:
    """`inception-supernet`: the search's value checks (the supernet's among them), then this machine."""
    validate(cfg)
    _check_here(train=cfg.train, data=cfg.data)


def _check_here(*, train: TrainConfig, data: DataConfig) -> None:
    _check_device("train.device", train.device)
    if isinstance(data, FolderData) and data.path:  # the tree itself (search/data/folder.py)
        check_tree(Path(data.path).expanduser())


def _check_device(name: str, value: str) -> None:
    if value == "auto":
        return
    device = torch.device(value)
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        fail(name, value, f"no such CUDA device here ({torch.cuda.device_count()} visible)")


def _check_prescreen(name: str, value: str | None) -> None:
    if value is not None:
        one_of(name, value, (*PROXIES, *(f"-{proxy}" for proxy in PROXIES)))
