"""Width multipliers: scale every channel count of a genotype, rounded to a channel multiple.

Rounding goes to the nearest multiple of `divisor` (never below `divisor`), as MobileNet's
`_make_divisible` does, so scaled networks keep hardware-friendly widths. Structure (stages,
reductions present or absent, branch kinds, aux placement) never changes; only widths do.
"""

from __future__ import annotations

import dataclasses

from space.genotype import Genotype, InceptionModule

__all__ = ["round_width", "scale_widths"]


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
    stages = tuple(
        dataclasses.replace(
            stage, modules=tuple(_scale_module(m, multiplier, divisor) for m in stage.modules)
        )
        for stage in g.stages
    )
    head = dataclasses.replace(
        g.aux.head,
        conv=round_width(g.aux.head.conv * multiplier, divisor),
        fc=round_width(g.aux.head.fc * multiplier, divisor),
    )
    return g.replace(stem=stem, stages=stages, aux=dataclasses.replace(g.aux, head=head))
