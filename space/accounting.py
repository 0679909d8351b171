"""Exact cost of a genotype by formula, without building or tracing a model.

Unit: multiply-adds (MACs) of convolution and linear layers, weights only, one fused
multiply-add counted once: k*k*c_in/groups*c_out*H_out*W_out per conv, in*out per linear. This is
the unit of the paper's Table 1 "ops" column and of its 1.5-billion budget, and it is what fvcore
reports as `conv` + `linear` flops. Parameters are every element of every weight, bias and
batch-norm affine tensor, i.e. `sum(p.numel() for p in model.parameters())`.

fvcore also counts batch norm (2 flops per element in eval, 5 in training) and adaptive average
pooling (1 per input element); those are kept apart (`norm_elements`, `pool_elements`) so the
search budget stays in the paper's unit while `fvcore_total` still matches fvcore exactly.

The counter and the model builder (`space.model`) read one list of layers (`space.layers`), so
what is counted is what is built; the tests check both against fvcore and `numel`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from space.genotype import Genotype
from space.layers import AvgPool, Conv, Layer, Linear, network_layers

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


def _block_cost(layers: Iterable[Layer]) -> BlockCost:
    """One block's cost by formula, layer by layer. Max and fixed-window average pools cost
    nothing in this unit (fvcore does not count them either)."""
    macs = params = norm = pool = 0
    for layer in layers:
        kind = type(layer)
        if kind is Conv:
            weights = layer.kernel * layer.kernel * layer.c_in // layer.groups * layer.c_out
            pixels = layer.size * layer.size
            macs += weights * pixels
            params += weights
            if layer.bare:  # no bias, no norm
                continue
            params += 2 * layer.c_out if layer.batch_norm else layer.c_out  # the norm's affine, or the bias
            if layer.batch_norm:
                norm += layer.c_out * pixels
        elif kind is Linear:
            macs += layer.c_in * layer.c_out
            params += layer.c_in * layer.c_out + layer.c_out
        elif kind is AvgPool and layer.window is None:  # adaptive: fvcore counts its inputs
            pool += layer.channels * layer.in_size * layer.in_size
    return BlockCost(macs, params, norm, pool)


def cost(genotype: Genotype) -> Cost:
    """The exact cost of `genotype` for one image, in microseconds and without torch.

    `per_module` holds "stem", each Inception module by name ("3a", ...), "head", and one
    "aux_<module>" per auxiliary head, in forward order.
    """
    blocks = {name: _block_cost(layers) for name, layers in network_layers(genotype).items()}
    aux_names = tuple(name for name in blocks if name.startswith("aux_"))
    return Cost(MappingProxyType(blocks), aux_names)
