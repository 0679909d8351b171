"""Optuna's side of the search space: a `Draw` backed by a trial, and the searched hyperparameters.

`space.ranges.sample` makes every architectural decision; this module adds the training
hyperparameters and maps each draw onto one `trial.suggest_*` call. Parameter names are stable
paths ("4b.c3", "aux.weight", "train.lr"), so studies stay comparable across versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import optuna

from search.config import SpaceConfig, TrainConfig
from space.genotype import Genotype
from space.ranges import Draw, Ranges, sample

__all__ = ["Hyperparameters", "TrialDraw", "sample_trial", "searched_hyperparameters"]

T = TypeVar("T")


class TrialDraw:
    """The only place that calls `trial.suggest_*`."""

    def __init__(self, trial: optuna.Trial) -> None:
        self._trial = trial

    def int(self, name: str, low: int, high: int, step: int) -> int:
        return self._trial.suggest_int(name, low, high, step=step)

    def float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        return self._trial.suggest_float(name, low, high, log=log)

    def choice(self, name: str, choices: Sequence[T]) -> T:
        return self._trial.suggest_categorical(name, list(choices))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Hyperparameters:
    lr: float
    weight_decay: float


def sample_hyperparameters(draw: Draw, space: SpaceConfig, train: TrainConfig) -> Hyperparameters:
    lr = draw.float("train.lr", *space.lr, log=True) if space.lr else train.lr
    wd = draw.float("train.weight_decay", *space.weight_decay, log=True) if space.weight_decay else train.weight_decay
    return Hyperparameters(lr=lr, weight_decay=wd)


def searched_hyperparameters(space: SpaceConfig) -> dict[str, list[float]]:
    """The training hyperparameters a study samples, by parameter name, with their log ranges;
    the others keep their `train.*` value in every trial."""
    ranges = {"train.lr": space.lr, "train.weight_decay": space.weight_decay}
    return {name: list(bounds) for name, bounds in ranges.items() if bounds}


def sample_trial(
    draw: Draw, *, ranges: Ranges, base: Genotype, space: SpaceConfig, train: TrainConfig
) -> tuple[Genotype, Hyperparameters]:
    """One architecture and its training hyperparameters, all from `draw`."""
    return sample(draw, ranges, base), sample_hyperparameters(draw, space, train)
