"""Canonical genotypes: the paper's GoogLeNet, its naive ablation, torchvision's port, and a
small-image network. The widths are Table 1 of Szegedy et al. (2014), row by row."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from space.genotype import Aux, AuxHead, Genotype, InceptionModule, MaxPool, Stage, Stem
from space.scaling import scale_widths

__all__ = ["PRESETS", "preset", "with_overrides"]

# Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
_TABLE_1: tuple[tuple[tuple[int, int, int, int, int, int], ...], ...] = (
    (  # stage 3, 28x28
        (64, 96, 128, 16, 32, 32),  # 3a
        (128, 128, 192, 32, 96, 64),  # 3b
    ),
    (  # stage 4, 14x14
        (192, 96, 208, 16, 48, 64),  # 4a
        (160, 112, 224, 24, 64, 64),  # 4b
        (128, 128, 256, 24, 64, 64),  # 4c
        (112, 144, 288, 32, 64, 64),  # 4d
        (256, 160, 320, 32, 128, 128),  # 4e
    ),
    (  # stage 5, 7x7
        (256, 160, 320, 32, 128, 128),  # 5a
        (384, 192, 384, 48, 128, 128),  # 5b
    ),
)

_PAPER_POOL = MaxPool(kernel=3, stride=2, padding=1)
_PAPER_AUX = Aux(at=("4a", "4d"), weight=0.3, head=AuxHead(pool="paper", conv=128, fc=1024, dropout=0.7))


def _stages(pools: tuple[MaxPool | None, ...], *, reduced: bool = True, large: str = "5x5") -> tuple[Stage, ...]:
    def module(row: tuple[int, int, int, int, int, int]) -> InceptionModule:
        c1, c3r, c3, c5r, c5, pp = row
        if not reduced:
            return InceptionModule(c1, None, c3, None, c5, None, large=large)  # type: ignore[arg-type]
        return InceptionModule(c1, c3r, c3, c5r, c5, pp, large=large)  # type: ignore[arg-type]

    return tuple(Stage(modules=tuple(module(row) for row in rows), pool=pool) for rows, pool in zip(_TABLE_1, pools))


def googlenet() -> Genotype:
    """The paper's network: no batch norm, dropout 0.4, aux heads on 4a and 4d with weight 0.3.

    `preset("googlenet", stem="separable")` gives the 7x7 depthwise (multiplier 8) + 1x1 stem whose 2.7K params and
    34M ops are Table 1's first row; `"dense"` a plain 7x7 conv (9.4K weights, 118M ops).
    """
    return Genotype(
        stem=Stem(kind="dense", conv1=64, reduce=64, conv3=192, pool1=_PAPER_POOL, pool2=_PAPER_POOL),
        stages=_stages((None, _PAPER_POOL, _PAPER_POOL)),
        resolution=224,
        in_channels=3,
        num_classes=1000,
        norm="none",
        dropout=0.4,
        aux=_PAPER_AUX,
    )


def googlenet_naive() -> Genotype:
    """GoogLeNet with every 1x1 reduction and pool projection removed (the naive module, Fig. 2a).

    Each module's output then carries its whole input through the pool branch, so widths grow
    from module to module: the blow-up that motivated the reductions.
    """
    return dataclasses.replace(googlenet(), stages=_stages((None, _PAPER_POOL, _PAPER_POOL), reduced=False))


def googlenet_torchvision() -> Genotype:
    """torchvision's `googlenet` module for module: batch norm (no conv bias), a 3x3 kernel in
    the "5x5" branch, ceil-mode pools with a 2x2/2 pool before 5a, adaptive-pooled aux heads and
    dropout 0.2. Its inference parameter count is torchvision's published 6,624,904."""
    ceil3 = MaxPool(kernel=3, stride=2, padding=0, ceil_mode=True)
    ceil2 = MaxPool(kernel=2, stride=2, padding=0, ceil_mode=True)
    return Genotype(
        stem=Stem(kind="dense", conv1=64, reduce=64, conv3=192, pool1=ceil3, pool2=ceil3),
        stages=_stages((None, ceil3, ceil2), large="3x3"),
        resolution=224,
        in_channels=3,
        num_classes=1000,
        norm="batch",
        dropout=0.2,
        aux=Aux(at=("4a", "4d"), weight=0.3, head=AuxHead(pool="adaptive", size=4, conv=128, fc=1024, dropout=0.7)),
    )


def googlenet_small() -> Genotype:
    """GoogLeNet at a quarter of its widths for 32x32 inputs and 10 classes (CIFAR-sized).

    A 3x3/1 stem with one 3x3/2 pool brings 32x32 to 16x16 at stage 3, 8x8 at stage 4, 4x4 at
    stage 5 (the paper's 28/14/7 ladder, shifted); batch norm, since small data trains better
    with it; aux heads on 4a and 4d as in the paper.
    """
    small = googlenet().replace(
        stem=Stem(kind="small", conv1=64, reduce=64, conv3=192, pool1=None, pool2=_PAPER_POOL),
        resolution=32,
        num_classes=10,
        norm="batch",
        dropout=0.2,
    )
    return scale_widths(small, 0.25, divisor=4)


PRESETS: dict[str, Callable[..., Genotype]] = {
    "googlenet": googlenet,
    "googlenet-naive": googlenet_naive,
    "googlenet-torchvision": googlenet_torchvision,
    "googlenet-small": googlenet_small,
}


def preset(name: str, **overrides: Any) -> Genotype:
    """A canonical genotype with top-level fields replaced.

    A mapping merges into a nested field (`aux={"weight": 0.0}`); `stem="separable"` is short
    for `stem={"kind": "separable"}`. Overrides go through `Genotype.from_dict`, so a misspelled
    field or a bad value raises a ValueError naming it.
    """
    if name not in PRESETS:
        raise ValueError(f"preset={name!r}: unknown (presets: {', '.join(PRESETS)})")
    return with_overrides(PRESETS[name](), overrides)


def with_overrides(genotype: Genotype, overrides: Mapping[str, Any]) -> Genotype:
    """`genotype` with fields replaced; mappings merge recursively into nested fields."""
    data = genotype.to_dict()
    for key, value in overrides.items():
        if key == "stem" and isinstance(value, str):
            value = {"kind": value}
        data[key] = _merge(data.get(key), value)
    return Genotype.from_dict(data)


def _merge(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, Mapping):
        return {**old, **{k: _merge(old.get(k), v) for k, v in new.items()}}
    return new
