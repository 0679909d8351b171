"""Optuna's side of the search space: a `Draw` backed by a trial, and one trial's whole sample.

`space.ranges.sample` makes every architectural decision and `search.params` draws the searched
training settings, both through one `Draw`; this module maps each draw onto one
`trial.suggest_*` call. Parameter names are stable paths ("4b.c3", "aux.weight", "train.lr"),
so studies stay comparable across versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import optuna

from search.config.params import SearchedParam, draw_values
from space.genotype import Genotype
from space.ranges import Draw, Ranges, sample

__all__ = ["TrialDraw", "sample_trial"]

T = TypeVar("T")


class TrialDraw:
    """The only place that calls `trial.suggest_*`."""

    def __init__(self, trial: optuna.Trial) -> None:
        self._trial = trial

    def int(self, name: str, low: int, high: int, step: int, *, log: bool = False) -> int:
        return self._trial.suggest_int(name, low, high, step=step, log=log)

    def float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        return self._trial.suggest_float(name, low, high, log=log)

    def choice(self, name: str, choices: Sequence[T]) -> T:
        return self._trial.suggest_categorical(name, list(choices))  # type: ignore[arg-type]


def sample_trial(
    draw: Draw, *, ranges: Ranges, base: Genotype, params: Sequence[SearchedParam]
) -> tuple[Genotype, dict[str, Any]]:
    """One architecture and the values of the searched settings, all from `draw`."""
    return sample(draw, ranges, base), draw_values(draw, params)
