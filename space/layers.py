"""The layers of every block of a genotype, as data: the one list that both the model builder
(`space.model`) and the cost counter (`space.accounting`) read.

One function per block kind (stem, Inception module, aux head, classifier head) says which
layers it has, with their channels, kernel, stride and output side length. A new branch kind is
added here once; the builder turns each layer into a torch module and the counter into a
formula, so the two cannot drift apart. fvcore and `numel` check both in the tests.

Layers are named tuples (immutable, and cheap enough to build that the cost of a genotype, which
a budget projection asks for hundreds of times per trial, stays in the tens of microseconds).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from space.genotype import AuxHead, Genotype, InceptionModule, MaxPool

__all__ = [
    "AuxLayers",
    "AvgPool",
    "Conv",
    "HeadLayers",
    "InceptionLayers",
    "Layer",
    "Linear",
    "Pool",
    "aux_layers",
    "head_layers",
    "inception_layers",
    "network_layers",
    "stem_layers",
]


class Conv(NamedTuple):
    """A conv block: conv, batch norm (when `batch_norm`), ReLU; the conv has a bias only
    without batch norm. With `bare`, only the conv, without bias: the separable stem's
    depthwise step. `size` is the output side length."""

    c_in: int
    c_out: int
    kernel: int
    size: int
    stride: int = 1
    groups: int = 1
    batch_norm: bool = False
    bare: bool = False


class Pool(NamedTuple):
    """A max pool of the genotype (None: no pooling at this place, an identity)."""

    pool: MaxPool | None


class AvgPool(NamedTuple):
    """An average pool of `channels` maps from `in_size` to `out_size` on a side: over a fixed
    `window` (kernel, stride), as the paper's aux heads pool 5x5/3, or adaptive (window None)."""

    channels: int
    in_size: int
    out_size: int
    window: tuple[int, int] | None = None


class Linear(NamedTuple):
    c_in: int
    c_out: int


Layer = Conv | Pool | AvgPool | Linear


@dataclass(frozen=True)
class InceptionLayers:
    """Four parallel branches (paper Fig. 2), concatenated on channels."""

    branch1: Conv
    branch3: tuple[Layer, ...]
    branch5: tuple[Layer, ...]
    branch_pool: tuple[Layer, ...]

    def __iter__(self) -> Iterator[Layer]:
        return iter((self.branch1, *self.branch3, *self.branch5, *self.branch_pool))


@dataclass(frozen=True)
class AuxLayers:
    """Pool, 1x1 conv, a hidden linear layer (ReLU, dropout), the classifier (paper section 5)."""

    pool: AvgPool
    conv: Conv
    fc: Linear
    dropout: float
    classifier: Linear

    def __iter__(self) -> Iterator[Layer]:
        return iter((self.pool, self.conv, self.fc, self.classifier))


@dataclass(frozen=True)
class HeadLayers:
    """Global average pool, dropout, the classifier."""

    pool: AvgPool
    dropout: float
    fc: Linear

    def __iter__(self) -> Iterator[Layer]:
        return iter((self.pool, self.fc))


def stem_layers(g: Genotype) -> tuple[Layer, ...]:
    """The first conv (dense, small, or separable: depthwise then 1x1), pool1, a 1x1 reduction,
    a 3x3 conv, pool2. Absent pools stay in the list as `Pool(None)`, so positions are fixed."""
    stem, bn = g.stem, g.norm == "batch"
    first, after1, _ = g.stem_sizes()
    k, s = stem.first_kernel, stem.first_stride
    if stem.kind == "separable":
        wide = g.in_channels * stem.depth_multiplier
        head: tuple[Layer, ...] = (
            Conv(g.in_channels, wide, k, first, stride=s, groups=g.in_channels, bare=True),
            Conv(wide, stem.conv1, 1, first, batch_norm=bn),
        )
    else:
        head = (Conv(g.in_channels, stem.conv1, k, first, stride=s, batch_norm=bn),)
    return (
        *head,
        Pool(stem.pool1),
        Conv(stem.conv1, stem.reduce, 1, after1, batch_norm=bn),
        Conv(stem.reduce, stem.conv3, 3, after1, batch_norm=bn),
        Pool(stem.pool2),
    )


# The pool branch's 3x3/1 max pool keeps the feature map's size (paper Fig. 2).
_BRANCH_POOL = Pool(MaxPool(kernel=3, stride=1, padding=1, ceil_mode=True))


def inception_layers(m: InceptionModule, c_in: int, size: int, *, batch_norm: bool) -> InceptionLayers:
    """A reduction set to None is absent: the branch then reads the module input directly."""

    def conv(a: int, b: int, kernel: int) -> Conv:
        return Conv(a, b, kernel, size, 1, 1, batch_norm)

    def reduce(width: int | None) -> tuple[Layer, ...]:
        return () if width is None else (Conv(c_in, width, 1, size, 1, 1, batch_norm),)

    large_in = m.c5_reduce or c_in
    if m.large == "3x3x2":  # two stacked 3x3: the receptive field of a 5x5 at 18/25 of its cost
        large: tuple[Layer, ...] = (conv(large_in, m.c5, 3), conv(m.c5, m.c5, 3))
    else:
        large = (conv(large_in, m.c5, 5 if m.large == "5x5" else 3),)
    return InceptionLayers(
        branch1=conv(c_in, m.c1, 1),
        branch3=(*reduce(m.c3_reduce), conv(m.c3_reduce or c_in, m.c3, 3)),
        branch5=(*reduce(m.c5_reduce), *large),
        branch_pool=(_BRANCH_POOL, *reduce(m.pool_proj)),
    )


def aux_layers(head: AuxHead, c_in: int, size: int, num_classes: int, *, batch_norm: bool) -> AuxLayers:
    out = head.out_size(size)
    window = (head.PAPER_KERNEL, head.PAPER_STRIDE) if head.pool == "paper" else None
    pool = AvgPool(c_in, size, out, window)
    return AuxLayers(
        pool=pool,
        conv=Conv(c_in, head.conv, 1, out, batch_norm=batch_norm),
        fc=Linear(head.conv * out * out, head.fc),
        dropout=head.dropout,
        classifier=Linear(head.fc, num_classes),
    )


def head_layers(g: Genotype) -> HeadLayers:
    return HeadLayers(
        pool=AvgPool(g.out_channels, g.final_size, 1),
        dropout=g.dropout,
        fc=Linear(g.out_channels, g.num_classes),
    )


Block = tuple[Layer, ...] | InceptionLayers | AuxLayers | HeadLayers


def network_layers(g: Genotype) -> dict[str, Block]:
    """Every block of `g` in forward order: "stem", each Inception module by name ("3a", ...),
    "head", then "aux_<module>" per auxiliary head. Iterating a block gives its layers."""
    bn = g.norm == "batch"
    blocks: dict[str, Block] = {"stem": stem_layers(g)}
    for name, module in g.named_modules():
        shape = g.shapes[name]
        blocks[name] = inception_layers(module, shape.in_channels, shape.size, batch_norm=bn)
    blocks["head"] = head_layers(g)
    for name in g.aux.at:
        shape = g.shapes[name]
        blocks[f"aux_{name}"] = aux_layers(g.aux.head, shape.out_channels, shape.size, g.num_classes, batch_norm=bn)
    return blocks
