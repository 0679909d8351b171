"""Structured configs: one dataclass per Hydra config group, registered in Hydra's ConfigStore.

Hydra merges `conf/` into these schemas, so a misspelled key or a value of the wrong type fails
at start-up. `validate` then checks what types cannot (choices, ranges, paths) and raises one
`ConfigError` naming the field and the value. Library code receives these dataclasses, never a
DictConfig.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, ClassVar, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from space.ranges import Ranges

__all__ = [
    "BudgetConfig",
    "Config",
    "ConfigError",
    "ConfirmConfig",
    "DataConfig",
    "DEFAULT_PARAMS",
    "LoggerConfig",
    "SearchConfig",
    "SpaceConfig",
    "StudyConfig",
    "SupernetSettings",
    "TrainConfig",
    "EXECUTION_FIELDS",
    "fail",
    "one_of",
    "positive",
    "register",
    "schema",
    "source_name",
    "training_identity",
]

STRATEGIES = ("train", "supernet")
SAMPLERS = ("tpe", "random", "nsga2", "gp", "evolution", "tpe-multivariate")
PRUNERS = ("none", "median", "hyperband")
BUDGET_MODES = ("constraint", "prune", "project")
SCHEDULES = ("paper", "cosine")
LOGGERS = ("wandb", "none")
WANDB_MODES = ("offline", "online", "disabled")


FROM_DATA = ("resolution", "in_channels", "num_classes")
_RANGES = Ranges()  # the search ranges' defaults, shared with space.random_genotype


class ConfigError(ValueError):
    """A bad value in the user's configuration; its message is one line naming field and value."""


def fail(name: str, value: Any, why: str) -> None:
    raise ConfigError(f"{name}={value!r}: {why}")


def one_of(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        fail(name, value, f"must be one of {', '.join(choices)}")


def positive(name: str, value: float) -> None:
    if not value > 0:
        fail(name, value, "must be > 0")


# On small inputs aux heads pool adaptively: the paper's 5x5/3 pool needs a 5x5 map. The
# default `space.genotype` of searches and ablations alike.
SMALL_INPUT_GENOTYPE: dict[str, Any] = {"aux": {"head": {"pool": "adaptive", "size": 2}}}


def _config_type(hint: Any) -> Any:
    """The OmegaConf type of a `Ranges` field: tuples become lists (OmegaConf has no nested
    tuples) and `X | None` becomes `Optional[X]`."""
    args = [a for a in typing.get_args(hint) if a is not Ellipsis]
    if typing.get_origin(hint) is tuple:
        return list[_config_type(args[0])]  # type: ignore[misc]
    if type(None) in args:
        return Optional[_config_type(next(a for a in args if a is not type(None)))]
    return hint


def _as_lists(value: Any) -> Any:
    return [_as_lists(v) for v in value] if isinstance(value, (tuple, list)) else value


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (tuple, list)) else value


def _range_fields() -> list[tuple[str, Any, Any]]:
    """One config field per field of `space.ranges.Ranges`, with its default: the space is
    declared once, there."""
    hints = typing.get_type_hints(Ranges)
    fields = []
    for f in dataclasses.fields(Ranges):
        default = getattr(_RANGES, f.name)
        if isinstance(default, tuple):
            fields.append((f.name, _config_type(hints[f.name]), field(default_factory=partial(_as_lists, default))))
        else:
            fields.append((f.name, hints[f.name], field(default=default)))
    return fields


_RANGE_FIELDS = _range_fields()
SpaceConfig = dataclasses.make_dataclass(
    "SpaceConfig",
    [
        _RANGE_FIELDS[0],  # base
        ("genotype", dict[str, Any], field(default_factory=lambda: copy.deepcopy(SMALL_INPUT_GENOTYPE))),
        *_RANGE_FIELDS[1:],
    ],
    namespace={
        "__module__": __name__,
        "__doc__": """The search space: the fields of `space.ranges.Ranges` (the ranges around a base
    preset; see there), plus the base's overrides and the searched training hyperparameters.

    `genotype` overrides fields of the base preset (as `space.preset(base, **genotype)`);
    resolution, input channels and classes always come from the data. A `reduce_ratios` entry of
    null removes that 1x1 reduction. Training hyperparameters are searched by `search.params`.
    """,
    },
)


@dataclass
class BudgetConfig:
    """A hard cap on inference multiply-adds (and parameters when `params` is set, and latency
    when `latency_ms` is set).

    mode=constraint: over-budget trials are never trained; they are recorded with
    their constraint values so the sampler learns the feasible region. mode=prune: the naive
    baseline, over-budget trials are pruned without telling the sampler why. mode=project: every
    sampled network is width-scaled into [min_fraction * macs, macs].
    """

    macs: int = 2_000_000
    params: Optional[int] = None
    mode: str = "constraint"
    min_fraction: float = 0.7
    # A cap on inference latency (ms) on this machine, predicted before training by a per-block
    # table (space/latency.py) and measured after; null: none. Measured at `latency_batch`
    # images with `latency_threads` CPU threads. `latency_table`: the table's file; null:
    # <study.results_dir>/latency-tables/<machine and setting>.json, fitted there once when missing.
    latency_ms: Optional[float] = None
    latency_batch: int = 1
    latency_threads: int = 1
    latency_table: Optional[str] = None


# What a search samples beside the architecture unless told otherwise.
DEFAULT_PARAMS: dict[str, Optional[str]] = {
    "train.lr": "tag(log, interval(0.01, 0.2))",
    "train.weight_decay": "tag(log, interval(1e-5, 1e-3))",
}


@dataclass
class ConfirmConfig:
    """After the search, the `top_k` networks by search value, and the hand design (the reference
    every lead is stated against), are retrained at a higher fidelity: `epochs` and `subset`
    (training images; null: the search's), once per seed of `seeds` (others than train.seed). The
    study's best is then the top-k network with the best mean validation accuracy there
    (search/optimize/confirm.py). top_k 0: off, the best is the search's."""

    top_k: int = 0
    seeds: list[int] = field(default_factory=lambda: [1, 2])
    epochs: Optional[int] = None
    subset: Optional[int] = None


@dataclass
class SearchConfig:
    """How the space is searched. `n_trials` counts trained networks (complete, pruned or
    failed); over-budget draws and duplicates are told to the sampler but cost only
    milliseconds, and `max_untrained_in_row` of them in a row stop the search with advice.

    `warm_start` enqueues the hand-designed base, projected onto the budget, as the first trial,
    so a search never ends below the design it started from. `prescreen` names a zero-cost
    proxy (search/training/proxies.py): `prescreen_candidates` random genotypes are scored by it on one
    minibatch, and the best `prescreen_trials` of them are trained first, as the sampler's
    warm-up. `params` maps train.* and data.* keys to Hydra sweep expressions, each drawn per
    trial beside the architecture (search/config/params.py)."""

    # "train": every trial trains its network; "supernet": every trial is scored through one
    # trained supernet (`supernet.*`), then the `train_top_k` best by score are trained on their
    # own and confirmed (search/experiments/supernet_search.py); n_trials then counts scored
    # candidates, and search.params are not searched (a supernet scores architectures, not recipes).
    strategy: str = "train"
    train_top_k: int = 5
    sampler: str = "tpe"
    pruner: str = "median"
    n_trials: int = 30
    # Training seconds (counted trials plus the pre-screen) after which no trial starts; null:
    # none. With it, n_trials is only a cap, and a pruner's savings buy more networks.
    budget_seconds: Optional[float] = None
    seed: int = 0
    storage: Optional[str] = None  # default: sqlite:///<study dir>/study.db
    n_startup_trials: int = 8
    # sampler=evolution (search/optimize/evolution.py): parents come from the newest `population`
    # trained networks, the best of `tournament` drawn at random; random until the population is full.
    population: int = 10
    tournament: int = 3
    max_untrained_in_row: int = 500
    warm_start: bool = True
    prescreen: Optional[str] = (
        None  # a proxy of search.training.proxies.PROXIES ("-name": lower is better), or null: off
    )
    prescreen_candidates: int = 200
    prescreen_trials: int = 4
    # Training and data settings searched beside the architecture (search/config/params.py): config
    # key -> Hydra sweep expression; null: not searched (the key keeps its configured value).
    params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    # Scale-out (search/optimize/workers.py): local worker processes; this process's index among
    # separately started ones (seeds its sampler apart; a multirun over it joins one study).
    n_workers: int = 1
    worker: int = 0
    # Crash recovery on RDB storages: heartbeat every `heartbeat_interval` s (null: off); a trial
    # silent for `grace_period` s (null: 2 x interval) fails and is retried up to `max_retry` times,
    # resuming from its last checkpoint: written after an epoch once `checkpoint_seconds` have
    # passed since the last one (0: every epoch; null: never), so long trials save every epoch
    # and second-long digits trials do not pay for it.
    heartbeat_interval: Optional[int] = 30
    grace_period: Optional[int] = None
    max_retry: int = 3
    checkpoint_seconds: Optional[float] = 60.0
    # A server storage (PostgreSQL, MySQL) that stops answering is waited for this many seconds,
    # reconnecting with back-off, before the command gives up (null: at once). Longer than a
    # routine restart or fail-over; past it the command exits with a line saying how to resume.
    storage_patience: Optional[float] = 300.0
    # Logs: one line per finished trial always; a trial that has trained `log_epochs_after`
    # seconds also logs a line per epoch (0: every epoch of every trial; null: never).
    log_epochs_after: Optional[float] = 10.0
    # The best confirmed at a higher fidelity (ConfirmConfig above).
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)


@dataclass
class SupernetSettings:
    """One supernet serves every budget in `budgets` x `macs` (null: budget.macs): its widest
    subnet is sized for the top one and each step's subnets are drawn across the range (search/
    budget/supernet.py); a search at any budget inside the range reuses it. Training: `epochs`
    epochs of the sandwich rule, the largest, the smallest and `random_subnets` random subnets
    per step, the others learning the largest's soft predictions where `distill` is on; with
    `sort_channels`, each layer whose readers are fixed has its channels sorted by importance
    after every epoch (Once-for-All). The optimiser and schedule are `train.*` (lr, momentum,
    weight decay, batch size, schedule; no Polyak average: the shared weights are what subnets
    inherit). Scoring: batch-norm statistics recomputed over `calibration_batches` x
    `calibration_batch_size` training images, then accuracy on `score_images` validation images
    (null: the whole split). Each epoch logs the scores of the largest, the smallest and
    `probes` fixed random subnets on `probe_images` validation images. The weights land in
    `<study.results_dir>/supernets/<key>/`, the key naming everything that changes them."""

    budgets: list[float] = field(default_factory=lambda: [0.5, 2.0])
    macs: Optional[int] = None
    epochs: int = 8
    random_subnets: int = 2
    # Defaults from bench/supernet.py's levers (README, "The supernet"): channel sorting and the
    # lighter score (2 x 200 recalibration images, 1,000 validation images) ranked no worse.
    distill: bool = True
    sort_channels: bool = True
    seed: int = 0
    calibration_batches: int = 2
    calibration_batch_size: int = 200
    score_images: Optional[int] = 1000
    probes: int = 3
    probe_images: Optional[int] = 1000


@dataclass
class StudyConfig:
    name: str = "digits"
    results_dir: str = "results"


@dataclass
class DataConfig:
    """Where images come from: the fields every source shares. Each source's own dataclass (in its
    module of search/data/sources/) adds its fields, so a config shows only what its source reads;
    `name` is `data=<name>`. `resolution` null keeps the data's own size; otherwise images are
    resized (bilinear) once at load time. Splits are fixed by `seed`. `subset` keeps a seeded,
    class-balanced sample of that many images (of the official training set, where the data has an
    official test set): fast runs on large data sets. With `val_size` null validation is carved
    out of the subset (`val_fraction`); with `val_size` set, validation is held out first and the
    subset is all training images (search/data/splits.py)."""

    name: str = MISSING  # set by each source's dataclass; the bare base has no source
    resolution: Optional[int] = None
    val_fraction: float = 0.2
    seed: int = 0
    augment: bool = False
    limit: Optional[int] = None  # use only the first N images (quick runs)
    subset: Optional[int] = None  # a seeded class-balanced sample of N images (see above)
    # Validation images, held out of the whole pool before `subset` draws the training images
    # (null: val_fraction of the subset). `val_epoch_size`: how many of them are evaluated after
    # each epoch but the last, where the pruner decides (null: all); the last epoch evaluates all.
    val_size: Optional[int] = None
    val_epoch_size: Optional[int] = None
    # What data.path names, where the source requires one ("folder", "file.npz"); None: optional.
    path_hint: ClassVar[Optional[str]] = None

    def check(self) -> None:
        """The checks of the shared fields; a source's dataclass adds its own fields' checks."""
        source = source_name(type(self))
        if source == MISSING:
            fail("data", self.name, "choose a data source (data=<name>, e.g. data=fashion-mnist or data=digits)")
        if self.name != source:
            fail(
                "data.name",
                self.name,
                f"choose the source with data={self.name} (the group; data.name alone keeps the fields of "
                f"{type(self).__name__})",
            )
        if self.path_hint is not None and not getattr(self, "path", None):
            fail("data.path", None, f"data={self.name} needs data.path=<{self.path_hint}>")
        if self.resolution is not None:
            positive("data.resolution", self.resolution)
        test_fraction = getattr(self, "test_fraction", None)  # sources without an official test split
        for name, value in (("val_fraction", self.val_fraction), ("test_fraction", test_fraction)):
            if value is not None and not 0 < value < 1:
                fail(f"data.{name}", value, "must be in (0, 1)")
        if test_fraction is not None and self.val_fraction + test_fraction >= 1:
            fail(
                "data.test_fraction",
                test_fraction,
                f"leaves no training data beside data.val_fraction={self.val_fraction}",
            )
        if self.limit is not None:
            positive("data.limit", self.limit)
        if self.subset is not None and self.subset < 10:
            fail("data.subset", self.subset, "must be >= 10 (or null: all images)")
        if self.val_size is not None:
            positive("data.val_size", self.val_size)
        if self.val_epoch_size is not None:
            positive("data.val_epoch_size", self.val_epoch_size)


def source_name(data_config: type[DataConfig]) -> str:
    """The `data=<name>` of a source's dataclass: its `name` field's default."""
    return dataclasses.fields(data_config)[0].default  # type: ignore[return-value]


@dataclass
class TrainConfig:
    """SGD with momentum; `schedule=paper` multiplies the learning rate by `lr_decay` every
    `decay_every` epochs (the paper: 0.96 every 8), `cosine` anneals to zero. The paper also
    evaluates a Polyak average of the weights: `polyak` is the per-step decay of that
    exponential moving average (null: evaluate the raw weights)."""

    epochs: int = 12
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "paper"
    lr_decay: float = 0.96
    decay_every: int = 8
    polyak: Optional[float] = 0.95  # per-step EMA decay of the weights evaluated; null: off
    device: str = "auto"
    amp: bool = True  # on CUDA only
    channels_last: str = "auto"  # auto | true | false
    seed: int = 0
    threads: Optional[int] = None  # torch CPU threads; null leaves torch's default


# TrainConfig fields that say how a run executes, not what it computes: left out of study
# identities and run cache keys, so a study or ablation started on a CPU may go on on a GPU.
EXECUTION_FIELDS = ("device", "amp", "channels_last", "threads")


def training_identity(train: TrainConfig) -> dict[str, Any]:
    """`train` as a dict without its execution-only fields."""
    identity = asdict(train)
    for key in EXECUTION_FIELDS:
        identity.pop(key)
    return identity


@dataclass
class LoggerConfig:
    name: str = "wandb"
    mode: str = "offline"
    project: str = "inception-nas"
    entity: Optional[str] = None
    dir: Optional[str] = None  # default: <study dir>
    group: Optional[str] = None  # W&B group of the runs; default: the study (a benchmark sets its name)


@dataclass
class Config:
    space: SpaceConfig = field(default_factory=SpaceConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    study: StudyConfig = field(default_factory=StudyConfig)
    data: DataConfig = field(default_factory=DataConfig)  # a source's: search.data.sources.data_config
    train: TrainConfig = field(default_factory=TrainConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    supernet: SupernetSettings = field(default_factory=SupernetSettings)
    progress: bool = True


def schema(cls: type) -> Any:
    """`cls` as the node a primary config extends: its `data` is the shared base, which the data
    group's own dataclass (conf/data/<name>.yaml extends `<name>_schema`) then replaces; a
    source's fields are accepted only where that source is chosen."""
    from omegaconf import OmegaConf

    node = OmegaConf.structured(cls)
    node.data = OmegaConf.structured(DataConfig)
    return node


def register(data_configs: Iterable[type[DataConfig]]) -> None:
    """Put the schemas in Hydra's ConfigStore: `conf/search.yaml` extends `search_schema`, and
    each conf/data/<name>.yaml extends its source's dataclass (`<name>_schema`). Also the `or` resolver the sweep
    directory uses (`${or:${hydra.job.override_dirname},${hydra.job.num}}`)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("or"):
        OmegaConf.register_new_resolver("or", lambda first, second: first if first not in (None, "") else second)
    cs = ConfigStore.instance()
    cs.store(name="search_schema", node=schema(Config))
    for data_config in data_configs:
        cs.store(group="data", name=f"{source_name(data_config)}_schema", node=data_config)


def ranges_from_config(cfg: Any) -> Ranges:
    """The `space.ranges.Ranges` a SpaceConfig describes (a ValueError names a bad field)."""
    return Ranges(**{f.name: _as_tuples(getattr(cfg, f.name)) for f in dataclasses.fields(Ranges)})
