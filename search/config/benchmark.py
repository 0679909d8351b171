"""The structured config of `python -m search.apps.benchmark`: the search's own config (space, budget,
data, training, logging: one pipeline for every method) plus what the protocol adds."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from search.config.checks import validate
from search.config.schema import PRUNERS, SAMPLERS, STRATEGIES, Config, ConfigError, fail, one_of, positive, schema
from space.ranges import SHARES

HAND_DESIGN = "hand design"  # the arm every method is compared with: the base projected onto the budget

__all__ = [
    "HAND_DESIGN",
    "BenchmarkConfig",
    "MethodConfig",
    "ProtocolConfig",
    "method_configs",
    "register_benchmark",
    "validate_benchmark",
]


@dataclass
class MethodConfig:
    """One search method: the `search.*` settings that differ between the methods compared."""

    sampler: str = "tpe"
    pruner: str = "median"
    warm_start: bool = True
    prescreen: Optional[str] = None
    share: str = "module"  # space.share: the design space it searches
    # A budget in training seconds per search (search.budget_seconds; n_trials then only caps it):
    # a method compared at equal seconds rather than equal networks, where its pruner saves some.
    budget_seconds: Optional[float] = None
    n_trials: Optional[int] = None  # null: benchmark.n_trials (strategy supernet: candidates scored)
    # search.strategy: "supernet" scores n_trials candidates through a supernet trained for each
    # repeat (supernet.* settings, seed = the repeat), then trains its top `train_top_k`
    # (null: search.train_top_k) on their own; its seconds count every stage.
    strategy: str = "train"
    train_top_k: Optional[int] = None


def _default_methods() -> dict[str, Any]:
    """Random search in each design space (each space's baseline, and its EDF), the main job's
    method in its space, and aging evolution in the compact space: the methods that matter at a
    cost of about 90 minutes of 2 cores (others: `+benchmark.methods.<name>={...}`)."""
    return {
        "random": {"sampler": "random", "pruner": "none", "warm_start": False},
        "tpe": {"sampler": "tpe", "pruner": "median", "warm_start": True},  # the main job's
        "random-stage": {"sampler": "random", "pruner": "none", "warm_start": False, "share": "stage"},
        "evolution-stage": {"sampler": "evolution", "pruner": "none", "warm_start": False, "share": "stage"},
    }


_METHOD_TYPES: dict[str, tuple[type, ...]] = {
    "sampler": (str,),
    "pruner": (str,),
    "warm_start": (bool,),
    "prescreen": (str, type(None)),
    "share": (str,),
    "budget_seconds": (int, float, type(None)),
    "n_trials": (int, type(None)),
    "strategy": (str,),
    "train_top_k": (int, type(None)),
}  # MethodConfig's field types, as isinstance checks (tests/search/experiments/test_benchmark.py holds them together)


def method_configs(b: ProtocolConfig) -> dict[str, MethodConfig]:
    """`benchmark.methods` as MethodConfigs. The mapping is untyped in the schema because
    OmegaConf cannot add a dataclass-typed entry from the command line
    (`+benchmark.methods.mine.sampler=gp` fails inside OmegaConf), so the keys and types
    are checked here instead, with the same one-line errors."""
    known = [f.name for f in fields(MethodConfig)]
    methods = {}
    for name, entry in b.methods.items():
        if b.only is not None and name not in b.only:
            continue
        if not isinstance(entry, dict):
            raise ConfigError(f"benchmark.methods.{name}={entry!r}: must be a mapping of {', '.join(known)}")
        for key, value in entry.items():
            if key not in known:
                raise ConfigError(f"benchmark.methods.{name}.{key}: unknown key (one of {', '.join(known)})")
            want = _METHOD_TYPES[key]
            if not isinstance(value, want):
                raise ConfigError(
                    f"benchmark.methods.{name}.{key}={value!r}: must be a {' or '.join(t.__name__ for t in want)}"
                )
        methods[name] = MethodConfig(**entry)
    return methods


@dataclass
class ProtocolConfig:
    """`repeats` independent searches per method (seeds 0..repeats-1), each of `n_trials`
    trained networks, each naming its best the way the main job does (confirmed at a higher
    fidelity where `search.confirm` is on). Then every repeat's best and the hand design, each
    width-matched to `budget.macs`, retrained from scratch with `seeds` seeds (`retrain_seed`,
    `retrain_seed` + 1, ...: apart from the search's and confirmation's seeds, so no retraining
    repeats the run that picked its network) for `retrain_epochs` epochs on a class-balanced
    `retrain_subset` of the training images (null: all), and tested once. Searches and
    retrainings run `jobs` at a time, each process with its share of the CPU threads.
    `baseline` is the method the others are compared with (random search); `default` is the
    main job's method, the one the goals are stated for."""

    name: str = "fashion-mnist"
    methods: dict[str, Any] = field(default_factory=_default_methods)  # name -> MethodConfig fields
    only: Optional[list[str]] = None  # the methods run (null: all of `methods`); a size's own pick
    baseline: str = "random"
    default: str = "tpe"
    repeats: int = 3
    n_trials: int = 10
    seeds: int = 5
    retrain_seed: int = 100
    retrain_epochs: int = 6
    retrain_subset: Optional[int] = 12000
    jobs: int = 2


@dataclass
class BenchmarkConfig(Config):
    benchmark: ProtocolConfig = field(default_factory=ProtocolConfig)


def register_benchmark() -> None:
    ConfigStore.instance().store(name="benchmark_schema", node=schema(BenchmarkConfig))


def validate_benchmark(cfg: BenchmarkConfig) -> None:
    validate(cfg)
    b = cfg.benchmark
    if not b.name or "/" in b.name:
        raise ConfigError(f"benchmark.name={b.name!r}: must be a non-empty name without '/'")
    if not b.methods:
        raise ConfigError("benchmark.methods={}: needs at least one method")
    for name in b.only or []:
        if name not in b.methods:
            raise ConfigError(f"benchmark.only={list(b.only or [])}: {name!r} is not one of benchmark.methods")
    for name, m in method_configs(b).items():
        one_of(f"benchmark.methods.{name}.sampler", m.sampler, SAMPLERS)
        one_of(f"benchmark.methods.{name}.pruner", m.pruner, PRUNERS)
        one_of(f"benchmark.methods.{name}.share", m.share, SHARES)
        one_of(f"benchmark.methods.{name}.strategy", m.strategy, STRATEGIES)
        for key in ("budget_seconds", "n_trials", "train_top_k"):
            value = getattr(m, key)
            if isinstance(value, bool):  # a YAML true is an int to isinstance
                fail(f"benchmark.methods.{name}.{key}", value, "must be a number")
            if value is not None:
                positive(f"benchmark.methods.{name}.{key}", value)
    if b.baseline not in method_configs(b):
        raise ConfigError(f"benchmark.baseline={b.baseline!r}: not one of benchmark.methods ({', '.join(b.methods)})")
    if b.default not in method_configs(b):
        raise ConfigError(f"benchmark.default={b.default!r}: not one of benchmark.methods ({', '.join(b.methods)})")
    for key in ("repeats", "n_trials", "seeds", "retrain_epochs", "jobs"):
        if getattr(b, key) < 1:
            raise ConfigError(f"benchmark.{key}={getattr(b, key)!r}: must be >= 1")
    if b.retrain_subset is not None and b.retrain_subset < 10:
        raise ConfigError(f"benchmark.retrain_subset={b.retrain_subset!r}: must be >= 10 (or null: all images)")
