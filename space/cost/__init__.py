"""Exact cost of a genotype by formula, without building or tracing a model.

Unit: multiply-adds (MACs) of convolution and linear layers, weights only, one fused
multiply-add counted once: k*k*c_in/groups*c_out*H_out*W_out per conv, in*out per linear. This is
the unit of the paper's Table 1 "ops" column and of its 1.5-billion budget, and it is what fvcore
reports as `conv` + `linear` flops. Parameters are every element of every weight, bias and
batch-norm affine tensor, i.e. `sum(p.numel() for p in model.parameters())`.

fvcore also counts batch norm (2 flops per element in eval, 5 in training) and adaptive average
pooling (1 per input element); those are kept apart (`norm_elements`, `pool_elements`) so the
search budget stays in the paper's unit while `fvcore_total` still matches fvcore exactly.

Every formula mirrors one layer that `space.model` builds from the same genotype fields; the
tests hold the two together with fvcore and `numel` as oracles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from space.genotype import AuxHead, Genotype, InceptionModule, Stem

__all__ = ["BlockCost", "Cost", "cost"]

# fvcore's batch-norm flops per normalised element, by mode.
_NORM_FLOPS_EVAL = 2
_NORM_FLOPS_TRAIN = 5


@dataclass(frozen=True)
class BlockCost:
    """The cost of one block (stem, Inception module, head or aux head) for one image."""

    macs: int
    params: int
    norm_elements: int = 0
    pool_elements: int = 0

    def __add__(self, other: BlockCost) -> BlockCost:
        return BlockCost(
            self.macs + other.macs,
            self.params + other.params,
            self.norm_elements + other.norm_elements,
            self.pool_elements + other.pool_elements,
        )


_ZERO = BlockCost(0, 0)


@dataclass(frozen=True)
class Cost:
    """Per-block costs and totals. Inference totals leave out the aux heads (they are dropped at
    inference and cost nothing there); `train_*` totals include them."""

    per_module: Mapping[str, BlockCost]
    aux_names: tuple[str, ...]

    def _sum(self, *, train: bool) -> BlockCost:
        total = _ZERO
        for name, block in self.per_module.items():
            if train or name not in self.aux_names:
                total = total + block
        return total

    @property
    def macs(self) -> int:
        return self._sum(train=False).macs

    @property
    def params(self) -> int:
        return self._sum(train=False).params

    @property
    def train_macs(self) -> int:
        return self._sum(train=True).macs

    @property
    def train_params(self) -> int:
        return self._sum(train=True).params

    @property
    def norm_flops(self) -> int:
        """Batch-norm flops at inference, fvcore's convention (2 per element)."""
        return _NORM_FLOPS_EVAL * self._sum(train=False).norm_elements

    @property
    def pool_flops(self) -> int:
        """Adaptive-average-pool flops at inference, fvcore's convention (1 per input element)."""
        return self._sum(train=False).pool_elements

    @property
    def fvcore_total(self) -> int:
        """What fvcore's `FlopCountAnalysis(model.eval(), x).total()` reports for one image."""
        return self.macs + self.norm_flops + self.pool_flops

    @property
    def train_fvcore_total(self) -> int:
        """fvcore's total for one image in training mode (aux heads run, batch norm counts 5)."""
        total = self._sum(train=True)
        return total.macs + _NORM_FLOPS_TRAIN * total.norm_elements + total.pool_elements


class _Counter:
    """Accumulates the cost of the layers of one block, mirroring `space.model`'s layers."""

    def __init__(self, norm: str) -> None:
        self._batch_norm = norm == "batch"
        self.macs = self.params = self.norm_elements = self.pool_elements = 0

    def conv_block(self, c_in: int, c_out: int, kernel: int, size: int) -> None:
        """Conv + optional batch norm + ReLU; the conv has a bias only without batch norm."""
        weights = kernel * kernel * c_in * c_out
        self.macs += weights * size * size
        self.params += weights + (2 * c_out if self._batch_norm else c_out)
        if self._batch_norm:
            self.norm_elements += c_out * size * size

    def depthwise(self, c_in: int, multiplier: int, kernel: int, size: int) -> None:
        weights = kernel * kernel * c_in * multiplier
        self.macs += weights * size * size
        self.params += weights

    def linear(self, c_in: int, c_out: int) -> None:
        self.macs += c_in * c_out
        self.params += c_in * c_out + c_out

    def adaptive_pool(self, channels: int, size: int) -> None:
        self.pool_elements += channels * size * size

    def result(self) -> BlockCost:
        return BlockCost(self.macs, self.params, self.norm_elements, self.pool_elements)


def _stem(g: Genotype) -> BlockCost:
    stem: Stem = g.stem
    first, after1, _ = g.stem_sizes()
    count = _Counter(g.norm)
    if stem.kind == "separable":
        count.depthwise(g.in_channels, stem.depth_multiplier, stem.first_kernel, first)
        count.conv_block(g.in_channels * stem.depth_multiplier, stem.conv1, 1, first)
    else:
        count.conv_block(g.in_channels, stem.conv1, stem.first_kernel, first)
    count.conv_block(stem.conv1, stem.reduce, 1, after1)
    count.conv_block(stem.reduce, stem.conv3, 3, after1)
    return count.result()


def _inception(m: InceptionModule, c_in: int, size: int, norm: str) -> BlockCost:
    count = _Counter(norm)
    count.conv_block(c_in, m.c1, 1, size)
    if m.c3_reduce is not None:
        count.conv_block(c_in, m.c3_reduce, 1, size)
    count.conv_block(m.c3_reduce or c_in, m.c3, 3, size)
    if m.c5_reduce is not None:
        count.conv_block(c_in, m.c5_reduce, 1, size)
    large_in = m.c5_reduce or c_in
    if m.large == "5x5":
        count.conv_block(large_in, m.c5, 5, size)
    elif m.large == "3x3x2":
        count.conv_block(large_in, m.c5, 3, size)
        count.conv_block(m.c5, m.c5, 3, size)
    else:
        count.conv_block(large_in, m.c5, 3, size)
    if m.pool_proj is not None:
        count.conv_block(c_in, m.pool_proj, 1, size)
    return count.result()


def _aux(head: AuxHead, c_in: int, size: int, num_classes: int, norm: str) -> BlockCost:
    count = _Counter(norm)
    out = head.out_size(size)
    if head.pool == "adaptive":
        count.adaptive_pool(c_in, size)
    count.conv_block(c_in, head.conv, 1, out)
    count.linear(head.conv * out * out, head.fc)
    count.linear(head.fc, num_classes)
    return count.result()


def _head(g: Genotype) -> BlockCost:
    count = _Counter(g.norm)
    count.adaptive_pool(g.out_channels, g.final_size)
    count.linear(g.out_channels, g.num_classes)
    return count.result()


def cost(genotype: Genotype) -> Cost:
    """The exact cost of `genotype` for one image, in microseconds and without torch.

    `per_module` holds "stem", each Inception module by name ("3a", ...), "head", and one
    "aux_<module>" per auxiliary head, in forward order.
    """
    g = genotype
    blocks: dict[str, BlockCost] = {"stem": _stem(g)}
    for name, module in g.named_modules():
        shape = g.shapes[name]
        blocks[name] = _inception(module, shape.in_channels, shape.size, g.norm)
    blocks["head"] = _head(g)
    aux_names = []
    for name in g.aux.at:
        shape = g.shapes[name]
        aux_names.append(f"aux_{name}")
        blocks[aux_names[-1]] = _aux(g.aux.head, shape.out_channels, shape.size, g.num_classes, g.norm)
    return Cost(MappingProxyType(blocks), tuple(aux_names))
