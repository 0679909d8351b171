"""Build a torch module from a genotype.

The layer list mirrors `space.cost` one to one; the tests check the two against fvcore and
`numel`. Batch norm is a switch of the conv block, so normalisation is an ablation, not a fork.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import Tensor, nn

from space.genotype import AuxHead, Genotype, InceptionModule, MaxPool, Stem

__all__ = ["ConvBlock", "Inception", "AuxClassifier", "InceptionNet", "build_model"]


class ConvBlock(nn.Sequential):
    """Conv (+ batch norm) + ReLU. The conv carries a bias only when there is no batch norm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, stride: int = 1, batch_norm: bool) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=not batch_norm)
        ]
        if batch_norm:
            layers.append(nn.BatchNorm2d(c_out, eps=1e-3))
        layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


ConvFactory = Callable[..., nn.Module]


def _max_pool(pool: MaxPool | None) -> nn.Module:
    if pool is None:
        return nn.Identity()
    return nn.MaxPool2d(pool.kernel, pool.stride, pool.padding, ceil_mode=pool.ceil_mode)


def _stem(stem: Stem, in_channels: int, conv: ConvFactory) -> nn.Sequential:
    if stem.kind == "separable":
        wide = in_channels * stem.depth_multiplier
        first: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                wide,
                stem.first_kernel,
                stride=stem.first_stride,
                padding=stem.first_kernel // 2,
                groups=in_channels,
                bias=False,
            ),
            conv(wide, stem.conv1, 1),
        ]
    else:
        first = [conv(in_channels, stem.conv1, stem.first_kernel, stride=stem.first_stride)]
    return nn.Sequential(
        *first,
        _max_pool(stem.pool1),
        conv(stem.conv1, stem.reduce, 1),
        conv(stem.reduce, stem.conv3, 3),
        _max_pool(stem.pool2),
    )


class Inception(nn.Module):
    """Four parallel branches concatenated on channels (paper Fig. 2)."""

    def __init__(self, m: InceptionModule, c_in: int, conv: ConvFactory) -> None:
        super().__init__()
        self.branch1 = conv(c_in, m.c1, 1)
        self.branch3 = nn.Sequential(
            *([conv(c_in, m.c3_reduce, 1)] if m.c3_reduce else []),
            conv(m.c3_reduce or c_in, m.c3, 3),
        )
        large_in = m.c5_reduce or c_in
        large: list[nn.Module] = {
            "5x5": lambda: [conv(large_in, m.c5, 5)],
            "3x3x2": lambda: [conv(large_in, m.c5, 3), conv(m.c5, m.c5, 3)],
            "3x3": lambda: [conv(large_in, m.c5, 3)],
        }[m.large]()
        self.branch5 = nn.Sequential(*([conv(c_in, m.c5_reduce, 1)] if m.c5_reduce else []), *large)
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
            *([conv(c_in, m.pool_proj, 1)] if m.pool_proj else []),
        )

    def forward(self, x: Tensor) -> Tensor:
        # N x c_in x H x W -> N x (c1 + c3 + c5 + (pool_proj or c_in)) x H x W
        branches = (self.branch1, self.branch3, self.branch5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


class AuxClassifier(nn.Module):
    """Auxiliary classifier (paper section 5), used in training only."""

    def __init__(
        self, head: AuxHead, c_in: int, size: int, num_classes: int, conv: ConvFactory
    ) -> None:
        super().__init__()
        out = head.out_size(size)
        self.pool = (
            nn.AvgPool2d(head.PAPER_KERNEL, stride=head.PAPER_STRIDE)
            if head.pool == "paper"
            else nn.AdaptiveAvgPool2d(head.size)
        )
        self.conv = conv(c_in, head.conv, 1)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(head.conv * out * out, head.fc),
            nn.ReLU(inplace=True),
            nn.Dropout(head.dropout),
        )
        self.classifier = nn.Linear(head.fc, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        # N x c_in x H x W -> N x conv x out x out -> N x num_classes
        return self.classifier(self.fc(self.conv(self.pool(x))))


class InceptionNet(nn.Module):
    """The network of a genotype.

    In training mode with aux heads, `forward` returns `(logits, {module_name: aux_logits})`;
    otherwise only the logits, and the aux heads are never run.
    """

    def __init__(self, genotype: Genotype) -> None:
        super().__init__()
        g = genotype
        self.genotype = g
        conv = partial(ConvBlock, batch_norm=g.norm == "batch")
        self.stem = _stem(g.stem, g.in_channels, conv)
        self.stage_pools = nn.ModuleList(_max_pool(stage.pool) for stage in g.stages)
        self.blocks = nn.ModuleDict(
            (name, Inception(module, g.shapes[name].in_channels, conv))
            for name, module in g.named_modules()
        )
        self.aux = nn.ModuleDict(
            (
                name,
                AuxClassifier(
                    g.aux.head, g.shapes[name].out_channels, g.shapes[name].size, g.num_classes, conv
                ),
            )
            for name in g.aux.at
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(g.dropout)
        self.fc = nn.Linear(g.out_channels, g.num_classes)

    def forward_features(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        run_aux = self.training and len(self.aux) > 0
        aux_logits: dict[str, Tensor] = {}
        x = self.stem(x)  # N x conv3 x stem_out x stem_out
        names = iter(self.blocks)
        for pool, stage in zip(self.stage_pools, self.genotype.stages):
            x = pool(x)
            for _ in stage.modules:
                name = next(names)
                x = self.blocks[name](x)
                if run_aux and name in self.aux:
                    aux_logits[name] = self.aux[name](x)
        return x, aux_logits

    def forward_head(self, x: Tensor) -> Tensor:
        # N x C x h x w -> N x C -> N x num_classes
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        features, aux_logits = self.forward_features(x)
        logits = self.forward_head(features)
        if aux_logits:
            return logits, aux_logits
        return logits


def build_model(genotype: Genotype) -> InceptionNet:
    """A freshly initialised network for `genotype` (torch's default initialisation)."""
    return InceptionNet(genotype)
