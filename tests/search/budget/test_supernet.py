"""A supernet trained for a range of budgets holds every network a search at any of them trains,
and its sandwich of subnets is seeded and resumable."""

from __future__ import annotations

import math

import pytest

import space
from search.budget.constraints import project
from search.budget.supernet import Sandwich, supernet_for_budgets
from search.config.schema import BudgetConfig
from space.accounting import cost
from space.ranges import RandomDraw, Ranges, sample

BASE = space.preset(
    "googlenet-small", resolution=28, in_channels=1, num_classes=10, aux={"head": {"pool": "adaptive", "size": 2}}
)
BUDGET = BudgetConfig(macs=2_000_000, mode="project")


@pytest.mark.parametrize("share", ["module", "stage"])
@pytest.mark.parametrize("budgets", [(0.5, 2.0), (1.0, 4.0)])
def test_every_draw_projected_onto_any_budget_of_the_range_is_held(share: str, budgets: tuple[float, float]) -> None:
    ranges = Ranges(share=share)
    held = supernet_for_budgets(ranges, BASE, BUDGET, budgets)
    sandwich = Sandwich(ranges, BASE, BUDGET, budgets, seed=0)
    for factor in (budgets[0], math.sqrt(budgets[0] * budgets[1]), budgets[1]):  # each end and the middle
        at = BudgetConfig(macs=int(BUDGET.macs * factor), mode="project")
        for seed in range(30):
            found = project(sample(RandomDraw(seed), ranges, BASE), at, divisor=ranges.width_step)
            if found is not None:
                held.check(found[0])
    for g in [sandwich.largest, sandwich.smallest, *(sandwich.random() for _ in range(40))]:
        held.check(g)
        assert cost(g).macs <= BUDGET.macs * budgets[1]
    assert cost(sandwich.largest).macs > 0.7 * BUDGET.macs * budgets[1]  # the top budget's window
    assert cost(sandwich.smallest).macs <= BUDGET.macs * budgets[0]


def test_a_range_of_budgets_widens_the_supernet_where_projection_widens_the_draws() -> None:
    ranges = Ranges()
    narrow = supernet_for_budgets(ranges, BASE, BUDGET, (0.5, 2.0))
    wide = supernet_for_budgets(ranges, BASE, BUDGET, (0.5, 16.0))
    assert wide.stages[0][0].c3 > narrow.stages[0][0].c3 and wide.stem[2] >= narrow.stem[2]


def test_the_sandwich_is_seeded_and_resumes_its_stream() -> None:
    ranges = Ranges()
    a, b = (Sandwich(ranges, BASE, BUDGET, (0.5, 2.0), seed=3) for _ in range(2))
    assert [g.key for g in a.step(3)] == [g.key for g in b.step(3)]
    state = a.state()
    later = [g.key for g in a.step(2)]
    b.restore(state)
    assert [g.key for g in b.step(2)] == later
    first = a.step(2)
    assert first[0] == a.largest and first[1] == a.smallest
