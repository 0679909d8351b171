"""The hard compute budget: feasibility before anything is built, and projection into it.

Constraint values follow Optuna's convention (<= 0 is feasible) and are relative, (cost - cap)
/ cap, so MACs and parameters weigh alike in the samplers' infeasibility score.

Projection (`budget.mode=project`) multiplies every width of the sampled network by one factor
m (`space.scaling.scale_widths`, rounded to multiples of `width_step`) and finds the largest m
whose analytic MACs (and params) fit the caps by bisection on m in [1/64, 64]: cost grows
monotonically with m up to rounding, each probe is a ~30 us formula, and 40 probes pin m far
below one rounding step. The trial is infeasible only when even the smallest widths exceed the
cap, or when the largest fitting network falls below `min_fraction * macs` (possible only when
rounding makes cost jump over the whole window).
"""

from __future__ import annotations

from space.cost import Cost, cost
from space.genotype import Genotype
from space.scaling import scale_widths

from search.config import BudgetConfig

__all__ = ["constraints", "feasible", "project"]


def constraints(c: Cost, budget: BudgetConfig) -> dict[str, float]:
    values = {"macs": (c.macs - budget.macs) / budget.macs}
    if budget.params is not None:
        values["params"] = (c.params - budget.params) / budget.params
    return values


def feasible(c: Cost, budget: BudgetConfig) -> bool:
    return all(v <= 0 for v in constraints(c, budget).values())


def project(genotype: Genotype, budget: BudgetConfig, *, divisor: int) -> tuple[Genotype, float] | None:
    """The widest width-scaled `genotype` inside the budget window, with its multiplier; None if
    no multiplier lands in [min_fraction * macs, macs]."""

    def fits(m: float) -> bool:
        return feasible(cost(scale_widths(genotype, m, divisor=divisor)), budget)

    low, high = 1 / 64, 64.0
    if not fits(low):
        return None
    for _ in range(40):
        mid = (low * high) ** 0.5
        low, high = (mid, high) if fits(mid) else (low, mid)
    scaled = scale_widths(genotype, low, divisor=divisor)
    if cost(scaled).macs < budget.min_fraction * budget.macs:
        return None
    return scaled, low
