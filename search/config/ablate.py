"""Structured config of `python -m search.apps.ablate` and `python -m search.apps.compare`.

Data, training and logging reuse the search's groups and dataclasses; an experiment file in
`conf/experiment/` states only what it changes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from search.config.common import validate_common
from search.config.schema import (
    SMALL_INPUT_GENOTYPE,
    ConfigError,
    DataConfig,
    LoggerConfig,
    TrainConfig,
    schema,
)
from space.ranges import Ranges

__all__ = ["AblateConfig", "AblationSpace", "AuxOverride", "ExperimentConfig", "register_ablate", "validate_ablate"]

KINDS = ("reductions", "aux", "single", "compare")


@dataclass
class AuxOverride:
    """Replaces the base genotype's aux placement and/or weight (multirun: space.aux.weight=...)."""

    at: Optional[list[str]] = None
    weight: Optional[float] = None


@dataclass
class AblationSpace:
    """The base genotype of the variants: a preset or genotype file, with overrides."""

    base: str = Ranges().base
    genotype: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(SMALL_INPUT_GENOTYPE))
    aux: AuxOverride = field(default_factory=AuxOverride)


@dataclass
class ExperimentConfig:
    """kind=reductions: the 1x1-reduction variants; aux: placements and weights; single: the
    base alone (for Hydra multiruns over space.*); compare: `architectures` scaled to
    `budget_macs` (or, with `match=latency`, to one latency) and compared with `baseline`."""

    name: str = "reductions"
    kind: str = "reductions"
    seeds: int = 3
    cost_only: bool = False  # the cost table alone, no training
    reduce_ratios: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0])
    per_module: bool = True
    aux_placements: Optional[list[list[str]]] = None  # null: none, 4a+4d, each stage-4 module
    aux_weights: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.3, 1.0])
    architectures: list[str] = field(default_factory=list)
    baseline: Optional[str] = None
    budget_macs: Optional[int] = None
    # compare: match every architecture's MACs (to budget_macs), or its latency on this machine
    # (batch 1, the trainer's device and threads): to budget_latency_ms, or null: the baseline's
    # latency once its MACs are matched, predicted by the comparison's own latency table.
    match: str = "macs"
    budget_latency_ms: Optional[float] = None
    width_divisor: int = 4
    latency_repeats: int = 20


@dataclass
class AblateConfig:
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    space: AblationSpace = field(default_factory=AblationSpace)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    results_dir: str = "results"
    # Save each run's trained network as weights/<variant>--s<seed>--<run key>.pt (beside its runs/
    # record; with its model card, as a
    # search's best: search/training/predict.py loads it). Runs cached without weights are trained again.
    keep_weights: bool = False


def register_ablate() -> None:
    ConfigStore.instance().store(name="ablate_schema", node=schema(AblateConfig))


def validate_ablate(cfg: AblateConfig) -> None:
    e = cfg.experiment
    if e.kind not in KINDS:
        raise ConfigError(f"experiment.kind={e.kind!r}: must be one of {', '.join(KINDS)}")
    if not e.name or "/" in e.name:
        raise ConfigError(f"experiment.name={e.name!r}: must be a non-empty name without '/'")
    if e.seeds < 1:
        raise ConfigError(f"experiment.seeds={e.seeds!r}: must be >= 1")
    if e.kind == "compare":
        if len(e.architectures) < 2:
            raise ConfigError(f"experiment.architectures={e.architectures!r}: compare needs at least two")
        if e.baseline is not None and e.baseline not in e.architectures:
            raise ConfigError(f"experiment.baseline={e.baseline!r}: not one of experiment.architectures")
        if e.budget_macs is not None and e.budget_macs <= 0:
            raise ConfigError(f"experiment.budget_macs={e.budget_macs!r}: must be > 0")
        if e.match not in ("macs", "latency"):
            raise ConfigError(f"experiment.match={e.match!r}: must be macs or latency")
        if e.budget_latency_ms is not None and not e.budget_latency_ms > 0:
            raise ConfigError(f"experiment.budget_latency_ms={e.budget_latency_ms!r}: must be > 0 milliseconds")
    if cfg.space.aux.weight is not None and cfg.space.aux.weight < 0:
        raise ConfigError(f"space.aux.weight={cfg.space.aux.weight!r}: must be >= 0")
    validate_common(data=cfg.data, train=cfg.train, logger=cfg.logger)
