"""A supernet of a design space: one network whose weights every genotype of the space shares, so
that a candidate can be scored with inherited weights instead of trained (Once-for-All's elastic
width and depth, ICLR 2020; facts, not code, carried over).

What is shared, and how:
- width, by slicing: every conv keeps the weights of its widest shape, and a genotype uses the
  first `k` filters of each (`weight[:k]`). Its input channels are not one prefix: an Inception
  module's output concatenates four branches, so the next module reads four runs of the widest
  layout (`index`), which the module returns with its output.
- depth, by prefix: a stage of `m` modules runs the first `m` of the supernet's stage.
- the stem's three widths too, since a budget projection scales the whole network
  (search/budget/constraints.py: scale_widths), stem included.

What cannot share weights gets a weight set per choice (a choice block): a reduction set to none
makes the 3x3 or the large branch read the module input instead of a 1x1 reduction, and each
large-branch kind (5x5, two 3x3, one 3x3) has its own convs. A pool branch without projection
(pool_proj none, the naive module's) passes the input through and would put the previous
module's layout inside this one's: the searched spaces never draw it, and the supernet refuses
it. Aux heads are training-only and scored networks run without them: the supernet has none,
and `subnet(g)` gives `g`'s heads fresh weights. docs/supernet.md says why each choice was made.

The genotype stays the one source of truth: `forward(x, g)` and `subnet(g)` read every width
from `g`, and `check(g)` names the first decision outside the supernet in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from space.genotype import Genotype, InceptionModule, MaxPool, module_name
from space.model import ConvBlock, InceptionNet, build_model
from space.ranges import SPLIT_GAIN, Ranges
from space.scaling import round_width

__all__ = ["ModuleWidths", "Supernet", "SupernetSpace", "supernet_space"]

_WIDTHS = ("c1", "c3_reduce", "c3", "c5_reduce", "c5", "pool_proj")


@dataclass(frozen=True)
class ModuleWidths:
    """The widest of each branch width at one module position."""

    c1: int
    c3_reduce: int
    c3: int
    c5_reduce: int
    c5: int
    pool_proj: int

    @property
    def out_channels(self) -> int:
        return self.c1 + self.c3 + self.c5 + self.pool_proj


@dataclass(frozen=True)
class SupernetSpace:
    """What one supernet holds: the base's fixed parts (input, pools, head, normalisation), the
    widest stem, the widest module at each position of each stage (the stage's length is its
    largest module count), the large-branch kinds, and whether reductions may be none."""

    base: Genotype
    stem: tuple[int, int, int]  # conv1, reduce, conv3 at their widest
    stages: tuple[tuple[ModuleWidths, ...], ...]
    large_kinds: tuple[str, ...]
    naive: bool

    def check(self, g: Genotype) -> None:
        """A ValueError naming the first decision of `g` the supernet does not hold."""
        b = self.base
        for field in ("resolution", "in_channels", "num_classes", "norm"):
            if getattr(g, field) != getattr(b, field):
                raise ValueError(f"{field}={getattr(g, field)!r}: the supernet's is {getattr(b, field)!r}")
        if (g.stem.kind, g.stem.pool1, g.stem.pool2) != (b.stem.kind, b.stem.pool1, b.stem.pool2):
            raise ValueError(f"stem.kind={g.stem.kind!r}: the supernet's stem is {b.stem.kind!r} with its pools")
        if g.stem.kind == "separable" and g.stem.depth_multiplier != b.stem.depth_multiplier:
            raise ValueError(f"stem.depth_multiplier={g.stem.depth_multiplier}: the supernet's is fixed")
        for field, widest in zip(("conv1", "reduce", "conv3"), self.stem):
            if getattr(g.stem, field) > widest:
                raise ValueError(f"stem.{field}={getattr(g.stem, field)}: above the supernet's maximum {widest}")
        if len(g.stages) != len(self.stages):
            raise ValueError(f"stages={len(g.stages)}: the supernet has {len(self.stages)}")
        for i, (stage, widest) in enumerate(zip(g.stages, self.stages)):
            if stage.pool != b.stages[i].pool:
                raise ValueError(f"stages[{i}].pool={stage.pool!r}: the supernet's is {b.stages[i].pool!r}")
            if len(stage.modules) > len(widest):
                raise ValueError(f"stage{3 + i}.modules={len(stage.modules)}: above the supernet's {len(widest)}")
            for j, (m, w) in enumerate(zip(stage.modules, widest)):
                self._check_module(module_name(i, j), m, w)

    def _check_module(self, name: str, m: InceptionModule, w: ModuleWidths) -> None:
        if m.pool_proj is None:
            raise ValueError(f"{name}.pool_proj=None: the supernet's pool branch always projects (no pass-through)")
        if not self.naive and (m.c3_reduce is None or m.c5_reduce is None):
            width = "c3_reduce" if m.c3_reduce is None else "c5_reduce"
            raise ValueError(f"{name}.{width}=None: this supernet's space has no branch without its reduction")
        if m.large not in self.large_kinds:
            raise ValueError(f"{name}.large={m.large!r}: the supernet holds {', '.join(self.large_kinds)}")
        for width in _WIDTHS:
            value = getattr(m, width)
            if value is not None and value > getattr(w, width):
                raise ValueError(f"{name}.{width}={value}: above the supernet's maximum {getattr(w, width)}")


def supernet_space(ranges: Ranges, base: Genotype, *, width_multiplier: float = 1.0, margin: int = 0) -> SupernetSpace:
    """The supernet of `ranges` around `base`, for both ways of sharing decisions (share=module
    and share=stage): each width at the larger of the two spaces' maxima, times
    `width_multiplier` (above 1 where a budget projection widens draws past the ranges), plus
    `margin` channels for what a projection's fill pass adds to one width."""
    step = ranges.width_step
    scale = ranges.width_scale[1] * max(1.0, SPLIT_GAIN)  # share=stage may widen one branch by SPLIT_GAIN
    numeric = [r for r in ranges.reduce_ratios if r is not None]
    ratio = max(numeric, default=1.0)

    def widest(width: int) -> int:
        return round_width(width * scale * width_multiplier, step) + margin

    stages = []
    for stage, (_, high) in zip(base.stages, ranges.modules_per_stage):
        positions = []
        for j in range(high):
            m = stage.modules[min(j, len(stage.modules) - 1)]
            c3, c5 = widest(m.c3), widest(m.c5)
            positions.append(
                ModuleWidths(
                    c1=widest(m.c1),
                    c3_reduce=max(step, round_width(ratio * c3, step) + margin),
                    c3=c3,
                    c5_reduce=max(step, round_width(ratio * c5, step) + margin),
                    c5=c5,
                    pool_proj=widest(m.pool_proj or m.c1),
                )
            )
        stages.append(tuple(positions))
    stem = tuple(round_width(w * width_multiplier, step) for w in (base.stem.conv1, base.stem.reduce, base.stem.conv3))
    return SupernetSpace(
        base=base,
        stem=(max(stem[0], base.stem.conv1), max(stem[1], base.stem.reduce), max(stem[2], base.stem.conv3)),
        stages=tuple(stages),
        large_kinds=tuple(ranges.large_kinds),
        naive=None in ranges.reduce_ratios,
    )


def _prefix(n: int, device: torch.device) -> Tensor:
    return torch.arange(n, device=device)


# Called for every tensor `sort_channels` reorders (tensor, dim, order), after it is reordered, so
# that a caller can reorder what it keeps per weight the same way (an optimiser's momentum).
Moved = Callable[[Tensor, int, Tensor], None]


def _reorder(t: Tensor, dim: int, order: Tensor, moved: Moved | None) -> None:
    t.data.copy_(t.data.index_select(dim, order))
    if moved is not None:
        moved(t, dim, order)


class _ElasticConv(nn.Module):
    """A conv block (conv, batch norm or bias, ReLU) at its widest shape. A call uses the first
    `out` filters over the input channels `index` of the widest input layout; batch norm uses
    the first `out` of its parameters and running statistics (updated in place when training)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, batch_norm: bool) -> None:
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3) if batch_norm else None

    def forward(self, x: Tensor, out: int, index: Tensor, stride: int = 1) -> Tensor:
        bias = None if self.conv.bias is None else self.conv.bias[:out]
        weight = self.conv.weight[:out].index_select(1, index)
        y = F.conv2d(x, weight, bias, stride=stride, padding=self.kernel // 2)
        if self.bn is not None:
            bn = self.bn
            y = F.batch_norm(
                y,
                bn.running_mean[:out],
                bn.running_var[:out],
                bn.weight[:out],
                bn.bias[:out],
                self.training,
                bn.momentum if bn.momentum is not None else 0.1,
                bn.eps,
            )
        return F.relu(y)

    @torch.no_grad()
    def reorder_out(self, order: Tensor, moved: Moved | None) -> None:
        """Its filters (and their bias or batch-norm entries) in `order`."""
        tensors = [self.conv.weight] if self.conv.bias is None else [self.conv.weight, self.conv.bias]
        if self.bn is not None:
            tensors += [self.bn.weight, self.bn.bias, self.bn.running_mean, self.bn.running_var]
        for t in tensors:
            _reorder(t, 0, order, moved)

    @torch.no_grad()
    def reorder_in(self, order: Tensor, moved: Moved | None) -> None:
        """Its input channels in `order` (the layer before reordered its filters so)."""
        _reorder(self.conv.weight, 1, order, moved)

    @torch.no_grad()
    def export(self, block: ConvBlock, out: int, index: Tensor) -> None:
        """Copy the slice a genotype uses into `block`, a stand-alone ConvBlock of that shape."""
        conv = block[0]
        conv.weight.copy_(self.conv.weight[:out].index_select(1, index))
        if self.conv.bias is not None:
            conv.bias.copy_(self.conv.bias[:out])
        if self.bn is not None:
            bn = block[1]
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name).copy_(getattr(self.bn, name)[:out])
            bn.num_batches_tracked.copy_(self.bn.num_batches_tracked)


_BRANCH_POOL = MaxPool(kernel=3, stride=1, padding=1, ceil_mode=True)


class _ElasticInception(nn.Module):
    """One module position: its four branches at their widest, with a choice block per large
    kind and, where reductions may be none, per reduced or naive input."""

    def __init__(self, c_in: int, w: ModuleWidths, space: SupernetSpace) -> None:
        super().__init__()
        bn = space.base.norm == "batch"
        self.w = w
        self.branch1 = _ElasticConv(c_in, w.c1, 1, batch_norm=bn)
        self.reduce3 = _ElasticConv(c_in, w.c3_reduce, 1, batch_norm=bn)
        self.conv3 = _ElasticConv(w.c3_reduce, w.c3, 3, batch_norm=bn)
        self.conv3_naive = _ElasticConv(c_in, w.c3, 3, batch_norm=bn) if space.naive else None
        self.reduce5 = _ElasticConv(c_in, w.c5_reduce, 1, batch_norm=bn)
        large: dict[str, nn.ModuleList] = {}
        for kind in space.large_kinds:
            for naive in (False, True) if space.naive else (False,):
                first_in = c_in if naive else w.c5_reduce
                convs = [_ElasticConv(first_in, w.c5, 3 if kind != "5x5" else 5, batch_norm=bn)]
                if kind == "3x3x2":
                    convs.append(_ElasticConv(w.c5, w.c5, 3, batch_norm=bn))
                large[f"{kind}-naive" if naive else kind] = nn.ModuleList(convs)
        self.large = nn.ModuleDict(large)
        self.pool = nn.MaxPool2d(_BRANCH_POOL.kernel, _BRANCH_POOL.stride, _BRANCH_POOL.padding, ceil_mode=True)
        self.pool_proj = _ElasticConv(c_in, w.pool_proj, 1, batch_norm=bn)

    def _large(self, m: InceptionModule) -> nn.ModuleList:
        return self.large[f"{m.large}-naive" if m.c5_reduce is None else m.large]

    def forward(self, x: Tensor, m: InceptionModule, index: Tensor) -> tuple[Tensor, Tensor]:
        """`m`'s output, and where its channels sit in this position's widest output layout."""
        device = x.device
        b1 = self.branch1(x, m.c1, index)
        if m.c3_reduce is None:
            b3 = self.conv3_naive(x, m.c3, index)  # type: ignore[misc]
        else:
            b3 = self.conv3(self.reduce3(x, m.c3_reduce, index), m.c3, _prefix(m.c3_reduce, device))
        if m.c5_reduce is None:
            y, inner = x, index
        else:
            y, inner = self.reduce5(x, m.c5_reduce, index), _prefix(m.c5_reduce, device)
        for conv in self._large(m):
            y, inner = conv(y, m.c5, inner), _prefix(m.c5, device)
        bp = self.pool_proj(self.pool(x), m.pool_proj, index)  # type: ignore[arg-type]
        return torch.cat([b1, b3, y, bp], dim=1), _layout(self.w, m, device)

    def inputs(self) -> list[_ElasticConv]:
        """The convs that read the module's input (each branch's first, every choice)."""
        naive = [self.conv3_naive] if self.conv3_naive is not None else []
        firsts = [convs[0] for name, convs in self.large.items() if name.endswith("-naive")]
        return [self.branch1, self.reduce3, self.reduce5, self.pool_proj, *naive, *firsts]

    def sort_channels(self, moved: Moved | None) -> None:
        """The channels a module keeps to itself (a reduction's, the first of two 3x3 convs')
        sorted by importance, so a narrow subnet's prefix holds the most important ones."""
        _sort(self.reduce3, [self.conv3], moved)
        _sort(self.reduce5, [convs[0] for name, convs in self.large.items() if not name.endswith("-naive")], moved)
        for convs in self.large.values():
            if len(convs) == 2:
                _sort(convs[0], [convs[1]], moved)

    def export(self, block: nn.Module, m: InceptionModule, index: Tensor) -> None:
        """Copy `m`'s slices into `block`, the stand-alone `space.model.Inception` of `m`."""
        device = index.device
        self.branch1.export(block.branch1, m.c1, index)
        if m.c3_reduce is None:
            self.conv3_naive.export(block.branch3[0], m.c3, index)  # type: ignore[union-attr]
        else:
            self.reduce3.export(block.branch3[0], m.c3_reduce, index)
            self.conv3.export(block.branch3[1], m.c3, _prefix(m.c3_reduce, device))
        blocks = list(block.branch5)
        inner = index
        if m.c5_reduce is not None:
            self.reduce5.export(blocks.pop(0), m.c5_reduce, index)
            inner = _prefix(m.c5_reduce, device)
        for conv, target in zip(self._large(m), blocks, strict=True):
            conv.export(target, m.c5, inner)
            inner = _prefix(m.c5, device)
        self.pool_proj.export(block.branch_pool[1], m.pool_proj, index)  # type: ignore[arg-type]


class Supernet(nn.Module):
    """Every genotype of a `SupernetSpace` in one network. `forward(x, g)` runs `g` on the
    shared weights; `subnet(g)` returns `g` as a stand-alone `InceptionNet` holding them."""

    def __init__(self, space: SupernetSpace) -> None:
        super().__init__()
        self.space = space
        b, bn = space.base, space.base.norm == "batch"
        if b.stem.kind == "separable":  # the depthwise step is fixed; the 1x1 after it is elastic
            wide = b.in_channels * b.stem.depth_multiplier
            self.stem_depthwise: nn.Module | None = nn.Conv2d(
                b.in_channels, wide, 7, stride=2, padding=3, groups=b.in_channels, bias=False
            )
            first_in, kernel = wide, 1
        else:
            self.stem_depthwise, first_in, kernel = None, b.in_channels, b.stem.first_kernel
        conv1, reduce, conv3 = space.stem
        self.stem_conv1 = _ElasticConv(first_in, conv1, kernel, batch_norm=bn)
        self.stem_reduce = _ElasticConv(conv1, reduce, 1, batch_norm=bn)
        self.stem_conv3 = _ElasticConv(reduce, conv3, 3, batch_norm=bn)
        self.pool1 = _pool(b.stem.pool1)
        self.pool2 = _pool(b.stem.pool2)
        self.stage_pools = nn.ModuleList(_pool(stage.pool) for stage in b.stages)
        blocks: dict[str, _ElasticInception] = {}
        for i, widths in enumerate(space.stages):
            for j, w in enumerate(widths):
                # A stage's first module follows whichever module ends the stage before (any
                # of its positions, by depth): its input weights are as wide as the widest of them.
                c_in = widths[j - 1].out_channels if j else _stage_input(space, i, conv3)
                blocks[module_name(i, j)] = _ElasticInception(c_in, w, space)
        self.blocks = nn.ModuleDict(blocks)
        self.fc = nn.Linear(max(w.out_channels for w in space.stages[-1]), b.num_classes)
        self.dropout = nn.Dropout(b.dropout)

    def _stem(self, x: Tensor, g: Genotype) -> Tensor:
        if self.stem_depthwise is not None:
            first_in = self.stem_depthwise.out_channels
            x = self.stem_depthwise(x)
        else:
            first_in = x.shape[1]
        s = g.stem
        stride = s.first_stride if self.stem_depthwise is None else 1
        x = self.stem_conv1(x, s.conv1, _prefix(first_in, x.device), stride)  # the one elastic conv with a stride
        x = self.pool1(x)
        x = self.stem_reduce(x, s.reduce, _prefix(s.conv1, x.device))
        x = self.stem_conv3(x, s.conv3, _prefix(s.reduce, x.device))
        return self.pool2(x)

    def forward(self, x: Tensor, g: Genotype) -> Tensor:
        """The logits of genotype `g` (aux heads are never run: they are training-only)."""
        x = self._stem(x, g)
        index = _prefix(g.stem.conv3, x.device)
        for i, (pool, stage) in enumerate(zip(self.stage_pools, g.stages)):
            x = pool(x)
            for j, m in enumerate(stage.modules):
                x, index = self.blocks[module_name(i, j)](x, m, index)
        x = self.dropout(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        return F.linear(x, self.fc.weight.index_select(1, index), self.fc.bias)

    @torch.no_grad()
    def sort_channels(self, moved: Moved | None = None) -> None:
        """Once-for-All's channel sorting, where a layer's channels have one fixed set of
        readers: each layer's filters reordered by importance (the L1 norm of the weights that
        read them), so that the first `k`, which a narrow subnet uses, are the most important
        `k`. The stem's chain and each module's inner channels (reductions, the first of two
        3x3 convs) are sorted; a module's output is not, since which module reads it depends on
        the depth drawn. The widest network computes the same function afterwards."""
        first = self.blocks[module_name(0, 0)]
        _sort(self.stem_conv1, [self.stem_reduce], moved)
        _sort(self.stem_reduce, [self.stem_conv3], moved)
        _sort(self.stem_conv3, first.inputs(), moved)
        for block in self.blocks.values():
            block.sort_channels(moved)  # type: ignore[operator]

    @torch.no_grad()
    def subnet(self, g: Genotype) -> InceptionNet:
        """`g` as a stand-alone network holding the inherited weights (its aux heads, which the
        supernet does not hold, freshly initialised). A ValueError names a decision of `g` the
        supernet does not hold."""
        self.space.check(g)
        net = build_model(g).to(self.fc.weight.device)
        device = self.fc.weight.device
        stem = list(net.stem)
        s = g.stem
        if self.stem_depthwise is not None:
            stem.pop(0).weight.copy_(self.stem_depthwise.weight)
            first_in = self.stem_depthwise.out_channels
        else:
            first_in = g.in_channels
        convs = [m for m in stem if isinstance(m, ConvBlock)]
        self.stem_conv1.export(convs[0], s.conv1, _prefix(first_in, device))
        self.stem_reduce.export(convs[1], s.reduce, _prefix(s.conv1, device))
        self.stem_conv3.export(convs[2], s.conv3, _prefix(s.reduce, device))
        index = _prefix(s.conv3, device)
        for i, stage in enumerate(g.stages):
            for j, m in enumerate(stage.modules):
                name = module_name(i, j)
                self.blocks[name].export(net.blocks[name], m, index)
                index = _layout(self.blocks[name].w, m, device)
        net.fc.weight.copy_(self.fc.weight.index_select(1, index))
        net.fc.bias.copy_(self.fc.bias)
        net.train(self.training)
        return net


def _pool(pool: MaxPool | None) -> nn.Module:
    return (
        nn.Identity()
        if pool is None
        else nn.MaxPool2d(pool.kernel, pool.stride, pool.padding, ceil_mode=pool.ceil_mode)
    )


def _stage_input(space: SupernetSpace, stage: int, stem_out: int) -> int:
    """The widest input of a stage's first module: the stem's, or any module that may end the
    stage before (a stage of m modules ends at position m - 1)."""
    if stage == 0:
        return stem_out
    return max(w.out_channels for w in space.stages[stage - 1])


def _layout(w: ModuleWidths, m: InceptionModule, device: torch.device) -> Tensor:
    return torch.cat(
        [
            _prefix(m.c1, device),
            w.c1 + _prefix(m.c3, device),
            w.c1 + w.c3 + _prefix(m.c5, device),
            w.c1 + w.c3 + w.c5 + _prefix(m.pool_proj, device),  # type: ignore[arg-type]
        ]
    )


def _sort(layer: _ElasticConv, readers: list[_ElasticConv], moved: Moved | None) -> None:
    """`layer`'s filters, and its `readers`' input channels, in order of decreasing importance."""
    importance = sum(r.conv.weight.detach().abs().sum(dim=(0, 2, 3)) for r in readers)
    order = torch.argsort(importance, descending=True, stable=True)  # type: ignore[call-overload]
    layer.reorder_out(order, moved)
    for r in readers:
        r.reorder_in(order, moved)
