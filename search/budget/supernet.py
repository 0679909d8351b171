"""Which networks a supernet trained for a range of budgets holds, and the ones each training
step runs (the sandwich rule: the largest, the smallest and `n` random subnets).

A supernet serves every budget in `[low, high] x budget.macs` (`supernet.budgets`), so that one
training answers searches at several budgets. A search in `budget.mode=project` scales each
draw by one multiplier into its budget's window, and the cheapest network of the space gets the
largest multiplier; so the supernet's widths are the space's widest widths times the multiplier
that projects the cheapest network onto the top budget, plus the few `width_step`s that
projection's fill pass may add to one width (space.scaling.widest_fitting). A draw outside it
is still refused by `SupernetSpace.check` in one line, never sliced wrongly.
"""

from __future__ import annotations

import dataclasses
import math
import random

from search.budget.constraints import project
from search.config.schema import BudgetConfig
from space.genotype import Genotype
from space.ranges import RandomDraw, Ranges, largest, sample, smallest
from space.supernet import SupernetSpace, supernet_space

__all__ = ["Sandwich", "supernet_for_budgets"]

FILL_STEPS = 3  # width_steps a projection's fill may add to one width past the multiplier's rounding


def _at(budget: BudgetConfig, factor: float) -> BudgetConfig:
    return dataclasses.replace(budget, macs=max(1, int(budget.macs * factor)), mode="project")


def supernet_for_budgets(
    ranges: Ranges, base: Genotype, budget: BudgetConfig, budgets: tuple[float, float]
) -> SupernetSpace:
    """The supernet that holds every draw of `ranges` (both ways of sharing) projected onto any
    budget in `budgets` x `budget.macs`, and every draw as drawn (budget.mode=constraint)."""
    cheapest = project(smallest(ranges, base), _at(budget, budgets[1]), divisor=ranges.width_step)
    multiplier = max(1.0, cheapest[1] if cheapest is not None else 1.0)
    return supernet_space(ranges, base, width_multiplier=multiplier, margin=FILL_STEPS * ranges.width_step)


class Sandwich:
    """The subnets of each training step, drawn across the supernet's range of budgets: the
    largest network of the top budget, the smallest of the bottom one (both fixed), and `n`
    random draws of the space, each projected onto a budget drawn log-uniformly from the range.
    Seeded: a resumed training draws what an uninterrupted one would (`state`/`restore`)."""

    def __init__(
        self, ranges: Ranges, base: Genotype, budget: BudgetConfig, budgets: tuple[float, float], *, seed: int
    ) -> None:
        self.ranges, self.base, self.budget, self.budgets = ranges, base, budget, budgets
        step = ranges.width_step
        top = project(largest(ranges, base), _at(budget, budgets[1]), divisor=step)
        bottom = project(smallest(ranges, base), _at(budget, budgets[0]), divisor=step)
        if top is None or bottom is None:
            raise ValueError(f"supernet.budgets={list(budgets)}: no network of the space fits x budget.macs")
        self.largest, self.smallest = top[0], bottom[0]
        self._rng = random.Random(seed)

    def random(self) -> Genotype:
        """One random draw projected onto a random budget of the range (redrawn where no width
        of it lands in that budget's window)."""
        low, high = (math.log(f) for f in self.budgets)
        while True:
            drawn = sample(RandomDraw(self._rng.randrange(2**31)), self.ranges, self.base)
            budget = _at(self.budget, math.exp(self._rng.uniform(low, high)))
            projected = project(drawn, budget, divisor=self.ranges.width_step)
            if projected is not None:
                return projected[0]

    def step(self, n: int) -> list[Genotype]:
        """The largest first (the teacher of in-place distillation), then the smallest and `n` random."""
        return [self.largest, self.smallest, *(self.random() for _ in range(n))]

    def state(self) -> tuple:
        return self._rng.getstate()

    def restore(self, state: tuple) -> None:
        self._rng.setstate(state)
