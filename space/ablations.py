"""Variants of a genotype for the paper's ablations, and matched-cost scaling for comparisons.

Each function returns an ordered {variant name: genotype}; names are stable so cached results
and reports line up across runs. Nothing here trains: costs of every variant come from
`space.cost`, so the paper's motivation (what the 1x1 reductions save) shows before training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from space.accounting import cost
from space.genotype import Genotype, InceptionModule
from space.scaling import round_width, widest_fitting

__all__ = ["aux_variants", "match_budget", "reduction_variants"]


def _map_modules(
    genotype: Genotype, change: Callable[[InceptionModule], InceptionModule], only: str | None = None
) -> Genotype:
    """`genotype` with `change(module)` applied to every module (or only to the one named)."""
    return genotype.map_modules(lambda name, m: change(m) if only in (None, name) else m)


def _naive(m: InceptionModule) -> InceptionModule:
    return dataclasses.replace(m, c3_reduce=None, c5_reduce=None, pool_proj=None)


def _ratio(ratio: float, divisor: int):
    def change(m: InceptionModule) -> InceptionModule:
        return dataclasses.replace(
            m,
            c3_reduce=None if m.c3_reduce is None else round_width(ratio * m.c3, divisor),
            c5_reduce=None if m.c5_reduce is None else round_width(ratio * m.c5, divisor),
        )

    return change


def reduction_variants(
    base: Genotype, *, ratios: Sequence[float] = (0.25, 0.5, 1.0), per_module: bool = True, divisor: int = 4
) -> dict[str, Genotype]:
    """The 1x1-reduction ablation: the base (all reductions), none at all (the naive module,
    Fig. 2a: no 3x3/5x5 reductions and no pool projection), reductions removed from one module at
    a time, only the 3x3 reductions, only the 5x5 reductions, and each reduce ratio level
    (reduce width = ratio x the branch's output width, rounded to `divisor`)."""
    variants = {"base": base, "naive": _map_modules(base, _naive)}
    if per_module:
        for name, _ in base.named_modules():
            variants[f"naive-{name}"] = _map_modules(base, _naive, only=name)
    variants["3x3-reduce-only"] = _map_modules(base, lambda m: dataclasses.replace(m, c5_reduce=None))
    variants["5x5-reduce-only"] = _map_modules(base, lambda m: dataclasses.replace(m, c3_reduce=None))
    for ratio in ratios:
        variants[f"ratio-{ratio:g}"] = _map_modules(base, _ratio(ratio, divisor))
    return variants


def aux_variants(
    base: Genotype,
    *,
    placements: Sequence[Sequence[str]] | None = None,
    weights: Sequence[float] = (0.0, 0.1, 0.3, 1.0),
    paper_placement: Sequence[str] = ("4a", "4d"),
    paper_weight: float = 0.3,
) -> dict[str, Genotype]:
    """The auxiliary-head ablation: placements at the paper's weight (none, the paper's 4a+4d,
    each single stage-4 module by default, or those given), then weight levels at the paper's
    placement. Inference cost is the same for all; training cost differs."""
    names = [name for name, _ in base.named_modules()]
    if placements is None:
        placements = [(), tuple(paper_placement), *[(n,) for n in names if n.startswith("4")]]
    variants: dict[str, Genotype] = {}
    for at in placements:
        label = "+".join(at) or "none"
        variants[f"aux-{label}"] = base.replace(aux=dataclasses.replace(base.aux, at=tuple(at), weight=paper_weight))
    paper = "+".join(paper_placement)
    for weight in weights:
        if weight != paper_weight:
            variants[f"aux-{paper}-w{weight:g}"] = base.replace(
                aux=dataclasses.replace(base.aux, at=tuple(paper_placement), weight=weight)
            )
    return variants


def match_budget(genotype: Genotype, macs: int, *, tolerance: float = 0.01, divisor: int = 8) -> Genotype:
    """`genotype` width-scaled so its inference MACs land within +-`tolerance` of `macs`.

    Method (`space.scaling.widest_fitting`): one width multiplier for the whole network found by
    bisection on the analytic cost, widths rounded to multiples of `divisor`; then `divisor`
    channels added to module widths, pass by pass, while MACs stay <= `macs`. So no architecture
    exceeds the budget, and each lands within one such step of it. Raises ValueError when no
    width assignment lands in [(1 - tolerance) * macs, macs].
    """
    found = widest_fitting(genotype, lambda g: cost(g).macs <= macs, divisor=divisor)
    if found is None or cost(found[0]).macs < (1 - tolerance) * macs:
        got = "nothing fits" if found is None else f"{cost(found[0]).macs:,}"
        raise ValueError(f"budget={macs!r}: cannot scale {genotype.key} within +-{tolerance:.0%} ({got})")
    return found[0]
