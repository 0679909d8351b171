from __future__ import annotations

import pytest

import space
from search.budget import constraints, feasible, project
from search.config import BudgetConfig


def test_constraints_are_relative_and_signed() -> None:
    c = space.cost(space.preset("googlenet-small"))
    values = constraints(c, BudgetConfig(macs=c.macs, params=c.params * 2))
    assert values == {"macs": 0.0, "params": -0.5}
    assert feasible(c, BudgetConfig(macs=c.macs)) and not feasible(c, BudgetConfig(macs=c.macs - 1))


@pytest.mark.parametrize("seed", range(30))
def test_projection_lands_every_network_in_the_window(seed: int) -> None:
    budget = BudgetConfig(macs=20_000_000, mode="project", min_fraction=0.9)
    g = space.random_genotype(seed)
    projected = project(g, budget, divisor=4)
    assert projected is not None
    scaled, multiplier = projected
    macs = space.cost(scaled).macs
    assert 0.9 * budget.macs <= macs <= budget.macs
    assert [len(s.modules) for s in scaled.stages] == [len(s.modules) for s in g.stages]  # only widths change
    assert (multiplier >= 1) == (space.cost(g).macs <= budget.macs)  # grows what fits, shrinks what does not


def test_projection_gives_up_below_the_smallest_network() -> None:
    assert project(space.random_genotype(0), BudgetConfig(macs=1000, mode="project"), divisor=4) is None
