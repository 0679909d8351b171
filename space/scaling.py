"""Width multipliers: scale every channel count of a genotype, rounded to a channel multiple.

Rounding goes to the nearest multiple of `divisor` (never below `divisor`), as MobileNet's
`_make_divisible` does, so scaled networks keep hardware-friendly widths. Structure (stages,
reductions present or absent, branch kinds, aux placement) never changes; only widths do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from space.genotype import Genotype, InceptionModule

__all__ = ["round_width", "scale_widths", "widest_fitting"]


def round_width(width: float, divisor: int) -> int:
    """The multiple of `divisor` nearest to `width`, at least `divisor`."""
    return max(divisor, int(width / divisor + 0.5) * divisor)


def _scale_module(m: InceptionModule, multiplier: float, divisor: int) -> InceptionModule:
    def scale(width: int | None) -> int | None:
        return None if width is None else round_width(width * multiplier, divisor)

    return dataclasses.replace(
        m,
        c1=scale(m.c1),
        c3_reduce=scale(m.c3_reduce),
        c3=scale(m.c3),
        c5_reduce=scale(m.c5_reduce),
        c5=scale(m.c5),
        pool_proj=scale(m.pool_proj),
    )


def scale_widths(genotype: Genotype, multiplier: float, *, divisor: int = 8) -> Genotype:
    """`genotype` with every conv and hidden-linear width times `multiplier`, rounded.

    The stem, the Inception modules and the aux heads' conv and fc widths scale; input channels,
    classes and the separable stem's depth multiplier do not.
    """
    if not multiplier > 0:
        raise ValueError(f"multiplier={multiplier!r}: must be > 0")
    g = genotype
    stem = dataclasses.replace(
        g.stem,
        conv1=round_width(g.stem.conv1 * multiplier, divisor),
        reduce=round_width(g.stem.reduce * multiplier, divisor),
        conv3=round_width(g.stem.conv3 * multiplier, divisor),
    )
    head = dataclasses.replace(
        g.aux.head,
        conv=round_width(g.aux.head.conv * multiplier, divisor),
        fc=round_width(g.aux.head.fc * multiplier, divisor),
    )
    scaled = g.map_modules(lambda _, m: _scale_module(m, multiplier, divisor))
    return scaled.replace(stem=stem, aux=dataclasses.replace(g.aux, head=head))


_MODULE_WIDTHS = ("c1", "c3_reduce", "c3", "c5_reduce", "c5", "pool_proj")


def _bump(genotype: Genotype, module: str, width: str, divisor: int) -> Genotype | None:
    """`genotype` with one width of one module grown by `divisor`; None where that width is absent."""
    if getattr(dict(genotype.named_modules())[module], width) is None:
        return None
    return genotype.map_modules(
        lambda name, m: dataclasses.replace(m, **{width: getattr(m, width) + divisor}) if name == module else m
    )


def widest_fitting(
    genotype: Genotype, fits: Callable[[Genotype], bool], *, divisor: int = 8
) -> tuple[Genotype, float] | None:
    """The widest width-scaled `genotype` for which `fits` holds, and its uniform multiplier.

    Two steps, both on the analytic cost (microseconds per probe):
    1. bisection on one multiplier m in [1/64, 64] (log scale, 40 probes) for the largest m
       whose `scale_widths(genotype, m, divisor)` fits. Rounding to multiples of `divisor`
       makes cost jump where many widths cross a rounding boundary at once (10-15% on small
       networks), so m alone cannot reach a narrow cost window;
    2. fill: passes over the Inception modules in order, adding `divisor` channels to each
       present width where the result still fits, until a pass adds nothing. This spreads the
       remainder evenly and ends within one `divisor` step of one layer from the limit.
    None when even m = 1/64 does not fit.
    """
    low, high = 1 / 64, 64.0
    if not fits(scale_widths(genotype, low, divisor=divisor)):
        return None
    for _ in range(40):
        mid = (low * high) ** 0.5
        low, high = (mid, high) if fits(scale_widths(genotype, mid, divisor=divisor)) else (low, mid)
    best = scale_widths(genotype, low, divisor=divisor)
    grew = True
    while grew:
        grew = False
        for name, _ in best.named_modules():
            for width in _MODULE_WIDTHS:
                candidate = _bump(best, name, width, divisor)
                if candidate is not None and fits(candidate):
                    best, grew = candidate, True
    return best, low
