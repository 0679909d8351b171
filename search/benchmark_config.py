"""The structured config of `python -m search.benchmark`: the search's own config (space, budget,
data, training, logging: one pipeline for every method) plus what the protocol adds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

from search.config import PRUNERS, SAMPLERS, Config, ConfigError, validate

__all__ = ["BenchmarkConfig", "MethodConfig", "ProtocolConfig", "register_benchmark", "validate_benchmark"]


@dataclass
class MethodConfig:
    """One search method: the `search.*` settings that differ between the methods compared."""

    sampler: str = "tpe"
    pruner: str = "median"
    warm_start: bool = True
    prescreen: Optional[str] = None


def _default_methods() -> dict[str, MethodConfig]:
    return {
        "random": MethodConfig(sampler="random", pruner="none", warm_start=False),
        "tpe": MethodConfig(sampler="tpe", pruner="median", warm_start=True),
        "tpe-hyperband": MethodConfig(sampler="tpe", pruner="hyperband", warm_start=True),
        "tpe-grad_norm": MethodConfig(sampler="tpe", pruner="median", warm_start=True, prescreen="-grad_norm"),
    }


@dataclass
class ProtocolConfig:
    """`repeats` independent searches per method (seeds 0..repeats-1), each of `n_trials`
    trained networks; then each method's best genotype and the hand design, width-matched to
    `budget.macs`, retrained from scratch with `seeds` seeds for `retrain_epochs` epochs on a
    class-balanced `retrain_subset` of the training images (null: all) and tested once.
    Searches and retrainings run `jobs` at a time, each process with its share of the CPU
    threads. `baseline` is the method the others are also compared with (random search)."""

    name: str = "fashion-mnist"
    methods: dict[str, MethodConfig] = field(default_factory=_default_methods)
    baseline: str = "random"
    repeats: int = 3
    n_trials: int = 10
    seeds: int = 5
    retrain_epochs: int = 6
    retrain_subset: Optional[int] = 12000
    jobs: int = 2


@dataclass
class BenchmarkConfig(Config):
    benchmark: ProtocolConfig = field(default_factory=ProtocolConfig)


def register_benchmark() -> None:
    ConfigStore.instance().store(name="benchmark_schema", node=BenchmarkConfig)


def validate_benchmark(cfg: BenchmarkConfig) -> None:
    validate(cfg)
    b = cfg.benchmark
    if not b.name or "/" in b.name:
        raise ConfigError(f"benchmark.name={b.name!r}: must be a non-empty name without '/'")
    if not b.methods:
        raise ConfigError("benchmark.methods={}: needs at least one method")
    for name, m in b.methods.items():
        if m.sampler not in SAMPLERS:
            raise ConfigError(f"benchmark.methods.{name}.sampler={m.sampler!r}: must be one of {', '.join(SAMPLERS)}")
        if m.pruner not in PRUNERS:
            raise ConfigError(f"benchmark.methods.{name}.pruner={m.pruner!r}: must be one of {', '.join(PRUNERS)}")
        if m.prescreen is not None:
            from search.proxies import PROXIES

            if m.prescreen.removeprefix("-") not in PROXIES:
                raise ConfigError(f"benchmark.methods.{name}.prescreen={m.prescreen!r}: must be one of {', '.join(PROXIES)}")
    if b.baseline not in b.methods:
        raise ConfigError(f"benchmark.baseline={b.baseline!r}: not one of benchmark.methods ({', '.join(b.methods)})")
    for key in ("repeats", "n_trials", "seeds", "retrain_epochs", "jobs"):
        if getattr(b, key) < 1:
            raise ConfigError(f"benchmark.{key}={getattr(b, key)!r}: must be >= 1")
    if b.retrain_subset is not None and b.retrain_subset < 10:
        raise ConfigError(f"benchmark.retrain_subset={b.retrain_subset!r}: must be >= 10 (or null: all images)")
