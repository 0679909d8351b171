"""Build a torch module from a genotype, layer by layer from `space.layers`.

The cost counter reads the same layer lists, so what is built is what is counted; fvcore and
`numel` check both in the tests. Batch norm is a field of each conv layer, so normalisation is an
ablation switch, not a fork of the builder.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from space import layers as L
from space.genotype import Genotype

__all__ = ["AuxClassifier", "ConvBlock", "Inception", "InceptionNet", "build_model"]


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


def build_layer(layer: L.Layer) -> nn.Module:
    """The torch module of one layer of `space.layers`."""
    match layer:
        case L.Conv(bare=True):
            return nn.Conv2d(
                layer.c_in,
                layer.c_out,
                layer.kernel,
                stride=layer.stride,
                padding=layer.kernel // 2,
                groups=layer.groups,
                bias=False,
            )
        case L.Conv():
            return ConvBlock(layer.c_in, layer.c_out, layer.kernel, stride=layer.stride, batch_norm=layer.batch_norm)
        case L.Pool(pool=None):
            return nn.Identity()
        case L.Pool(pool=p):
            return nn.MaxPool2d(p.kernel, p.stride, p.padding, ceil_mode=p.ceil_mode)
        case L.AvgPool(window=(kernel, stride)):
            return nn.AvgPool2d(kernel, stride=stride)
        case L.AvgPool():
            return nn.AdaptiveAvgPool2d(layer.out_size)
        case L.Linear():
            return nn.Linear(layer.c_in, layer.c_out)
    raise TypeError(f"layer={layer!r}: no builder for {type(layer).__name__}")


def _sequential(layers: tuple[L.Layer, ...]) -> nn.Sequential:
    return nn.Sequential(*map(build_layer, layers))


class Inception(nn.Module):
    """Four parallel branches concatenated on channels (paper Fig. 2)."""

    def __init__(self, spec: L.InceptionLayers) -> None:
        super().__init__()
        self.branch1 = build_layer(spec.branch1)
        self.branch3 = _sequential(spec.branch3)
        # The large convs are created before their 1x1 reduction, as in the first version of this
        # builder: the same draws from torch's seeded generator, so every seeded result stays.
        large = [build_layer(layer) for layer in spec.branch5 if layer.kernel > 1]  # type: ignore[union-attr]
        reduce = [build_layer(layer) for layer in spec.branch5 if layer.kernel == 1]  # type: ignore[union-attr]
        self.branch5 = nn.Sequential(*reduce, *large)
        self.branch_pool = _sequential(spec.branch_pool)

    def forward(self, x: Tensor) -> Tensor:
        # N x c_in x H x W -> N x (c1 + c3 + c5 + (pool_proj or c_in)) x H x W
        branches = (self.branch1, self.branch3, self.branch5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


class AuxClassifier(nn.Module):
    """Auxiliary classifier (paper section 5), used in training only."""

    def __init__(self, spec: L.AuxLayers) -> None:
        super().__init__()
        self.pool = build_layer(spec.pool)
        self.conv = build_layer(spec.conv)
        self.fc = nn.Sequential(nn.Flatten(), build_layer(spec.fc), nn.ReLU(inplace=True), nn.Dropout(spec.dropout))
        self.classifier = build_layer(spec.classifier)

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
        spec = L.network_layers(g)
        self.genotype = g
        self.stem = _sequential(spec["stem"])  # type: ignore[arg-type]
        self.stage_pools = nn.ModuleList(build_layer(L.Pool(stage.pool)) for stage in g.stages)
        self.blocks = nn.ModuleDict((name, Inception(spec[name])) for name, _ in g.named_modules())  # type: ignore[arg-type]
        self.aux = nn.ModuleDict((name, AuxClassifier(spec[f"aux_{name}"])) for name in g.aux.at)  # type: ignore[arg-type]
        head: L.HeadLayers = spec["head"]  # type: ignore[assignment]
        self.pool = build_layer(head.pool)
        self.dropout = nn.Dropout(head.dropout)
        self.fc = build_layer(head.fc)

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
