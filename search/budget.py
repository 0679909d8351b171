"""The hard compute budget: feasibility before anything is built, and projection into it.

Constraint values follow Optuna's convention (<= 0 is feasible) and are relative, (cost - cap)
/ cap, so MACs and parameters weigh alike in the samplers' infeasibility score.

Projection (`budget.mode=project`, `space.scaling.widest_fitting`) multiplies every width of the
sampled network (stem and aux heads included) by one factor m, rounded to multiples of
`space.width_step`, with m found by bisection on the analytic cost; then it adds `width_step`
channels to the Inception modules' widths, pass by pass, while the network still fits, which
closes the gap that rounding leaves. Each probe is a ~30 us formula, so a projection takes
milliseconds. The trial is infeasible only when even 1/64 of the widths exceeds the cap or the
result falls below `min_fraction * macs`.
"""

from __future__ import annotations

from space.accounting import Cost, cost
from space.genotype import Genotype
from space.ranges import Ranges, smallest
from space.scaling import scale_widths, widest_fitting

from search.config import BudgetConfig, ConfigError

__all__ = ["check_reachable", "constraints", "feasible", "project"]

_NARROWEST = 1 / 64  # the lowest width multiplier projection tries (space.scaling.widest_fitting)


def constraints(c: Cost, budget: BudgetConfig) -> dict[str, float]:
    """Optuna constraint values (<= 0 feasible). In project mode the window's floor is a
    constraint too: a network that could not be projected into it is not trained."""
    values = {"macs": (c.macs - budget.macs) / budget.macs}
    if budget.params is not None:
        values["params"] = (c.params - budget.params) / budget.params
    if budget.mode == "project":
        values["macs_floor"] = (budget.min_fraction * budget.macs - c.macs) / budget.macs
    return values


def feasible(c: Cost, budget: BudgetConfig) -> bool:
    return all(v <= 0 for v in constraints(c, budget).values())


def project(genotype: Genotype, budget: BudgetConfig, *, divisor: int) -> tuple[Genotype, float] | None:
    """The widest width-scaled `genotype` inside [min_fraction * macs, macs] (and under the
    params cap), with its uniform multiplier; None if none lands in the window."""
    def under_caps(g: Genotype) -> bool:
        values = constraints(cost(g), budget)
        return values["macs"] <= 0 and values.get("params", 0) <= 0

    found = widest_fitting(genotype, under_caps, divisor=divisor)
    if found is None or cost(found[0]).macs < budget.min_fraction * budget.macs:
        return None
    return found


def check_reachable(budget: BudgetConfig, ranges: Ranges, base: Genotype) -> None:
    """Refuse, before a study is opened, a budget that no network of the space can meet: every
    trial would be infeasible. In project mode the space reaches down to 1/64 of its widths."""
    g = smallest(ranges, base)
    if budget.mode == "project":
        g = scale_widths(g, _NARROWEST, divisor=ranges.width_step)
    c = cost(g)
    where = f"{base.resolution}x{base.resolution} input"
    if c.macs > budget.macs:
        raise ConfigError(
            f"budget.macs={budget.macs}: below the smallest network of this space ({c.macs:,} MACs at {where}); "
            "raise it, or lower space.width_scale / space.modules_per_stage"
        )
    if budget.params is not None and c.params > budget.params:
        raise ConfigError(
            f"budget.params={budget.params}: below the smallest network of this space ({c.params:,} parameters); "
            "raise it, or lower space.width_scale / space.modules_per_stage"
        )
