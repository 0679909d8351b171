"""The structured config of `inception-supernet` (`python -m search.apps.supernet`): the search's
own config (space, budget, data, training recipe, logging), which says what the supernet holds
and how each step trains, plus the supernet's own settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

from search.config.checks import validate
from search.config.schema import Config, fail, positive, schema

__all__ = ["SupernetConfig", "SupernetSettings", "register_supernet", "validate_supernet"]


@dataclass
class SupernetSettings:
    """One supernet serves every budget in `budgets` x `budget.macs`: its widest subnet is
    sized for the top one and each step's subnets are drawn across the range (search/budget/
    supernet.py). Training: `epochs` epochs of the sandwich rule, the largest, the smallest and
    `random_subnets` random subnets per step, the others learning the largest's soft predictions
    where `distill` is on; with `sort_channels`, each layer whose readers are fixed has its
    channels sorted by importance after every epoch (Once-for-All). The optimiser and schedule
    are `train.*` (lr, momentum, weight decay, batch size, schedule; no Polyak average: the
    shared weights are what subnets inherit). Scoring: batch-norm statistics recomputed over
    `calibration_batches` x `calibration_batch_size` training images, then accuracy on
    `score_images` validation images (null: the whole split). Each epoch logs the scores of the
    largest, the smallest and `probes` fixed random subnets on `probe_images` validation images.
    The weights land in `<study.results_dir>/supernets/<key>/`, the key naming everything that
    changes them."""

    budgets: list[float] = field(default_factory=lambda: [0.5, 2.0])
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
class SupernetConfig(Config):
    supernet: SupernetSettings = field(default_factory=SupernetSettings)


def register_supernet() -> None:
    ConfigStore.instance().store(name="supernet_schema", node=schema(SupernetConfig))


def validate_supernet(cfg: SupernetConfig) -> None:
    validate(cfg)
    s = cfg.supernet
    if len(s.budgets) != 2 or not 0 < s.budgets[0] <= s.budgets[1]:
        fail("supernet.budgets", s.budgets, "needs [low, high] multiples of budget.macs with 0 < low <= high")
    for key in ("epochs", "calibration_batches", "calibration_batch_size"):
        positive(f"supernet.{key}", getattr(s, key))
    for key in ("random_subnets", "probes"):
        if getattr(s, key) < 0:
            fail(f"supernet.{key}", getattr(s, key), "must be >= 0")
    for key in ("score_images", "probe_images"):
        if getattr(s, key) is not None:
            positive(f"supernet.{key}", getattr(s, key))
