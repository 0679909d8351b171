"""The genotype: the one description of an Inception network that everything else reads.

The model builder, the analytic cost counter, the Optuna sampler, the reports and the W&B config
all consume these frozen dataclasses; none of them re-derives a width or a feature-map size on
its own. Shapes are computed here (`Genotype.shapes`) so the builder and the cost counter agree
by construction, and fvcore checks both in the tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

__all__ = [
    "AuxHead",
    "Aux",
    "Genotype",
    "InceptionModule",
    "MaxPool",
    "ModuleShape",
    "Stage",
    "Stem",
    "LARGE_KINDS",
    "STEM_KINDS",
    "NORMS",
    "module_name",
]

StemKind = Literal["dense", "separable", "small"]
LargeKind = Literal["5x5", "3x3x2", "3x3"]
Norm = Literal["none", "batch"]
AuxPool = Literal["paper", "adaptive"]

STEM_KINDS: tuple[str, ...] = ("dense", "separable", "small")
LARGE_KINDS: tuple[str, ...] = ("5x5", "3x3x2", "3x3")
NORMS: tuple[str, ...] = ("none", "batch")
AUX_POOLS: tuple[str, ...] = ("paper", "adaptive")


def module_name(stage: int, position: int) -> str:
    """The paper's names: stage 0 is "3", so GoogLeNet's modules are 3a, 3b, 4a, ..., 5b."""
    return f"{3 + stage}{chr(ord('a') + position)}"


def _fail(field_name: str, value: Any, why: str) -> None:
    raise ValueError(f"{field_name}={value!r}: {why}")


def _positive(field_name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        _fail(field_name, value, "must be a positive integer")


def _optional_positive(field_name: str, value: Any) -> None:
    if value is not None:
        _positive(field_name, value)


def _probability(field_name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        _fail(field_name, value, "must be a probability in [0, 1)")


def _choice(field_name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(field_name, value, f"must be one of {', '.join(choices)}")


@dataclass(frozen=True)
class MaxPool:
    """A max pool. The paper's 3x3/2 pools pad by 1; torchvision's use ceil_mode and no padding."""

    kernel: int = 3
    stride: int = 2
    padding: int = 1
    ceil_mode: bool = False

    def __post_init__(self) -> None:
        _positive("pool.kernel", self.kernel)
        _positive("pool.stride", self.stride)
        if isinstance(self.padding, bool) or not isinstance(self.padding, int):
            _fail("pool.padding", self.padding, "must be an integer")
        if not 0 <= self.padding <= self.kernel // 2:
            _fail("pool.padding", self.padding, f"must be in [0, kernel // 2 = {self.kernel // 2}]")

    def out_size(self, size: int) -> int:
        """Output side length, with torch's rule that a ceil-mode window may not start in padding."""
        span = size + 2 * self.padding - self.kernel
        if span < 0:
            return 0
        if not self.ceil_mode:
            return span // self.stride + 1
        out = -(-span // self.stride) + 1
        if (out - 1) * self.stride >= size + self.padding:
            out -= 1
        return out


@dataclass(frozen=True)
class Stem:
    """The layers before the first Inception module.

    `dense`: the paper's 7x7/2 conv. `separable`: 7x7/2 depthwise with depth multiplier
    `depth_multiplier`, then 1x1 to `conv1` channels (the 2.7K params / 34M ops of Table 1).
    `small`: a 3x3/1 conv for inputs of 32x32 and below. Each is followed by `pool1`, a 1x1
    reduction to `reduce` channels, a 3x3 conv to `conv3` channels, and `pool2`.
    """

    kind: StemKind = "dense"
    conv1: int = 64
    reduce: int = 64
    conv3: int = 192
    depth_multiplier: int = 8
    pool1: MaxPool | None = MaxPool()
    pool2: MaxPool | None = MaxPool()

    def __post_init__(self) -> None:
        _choice("stem.kind", self.kind, STEM_KINDS)
        for name in ("conv1", "reduce", "conv3", "depth_multiplier"):
            _positive(f"stem.{name}", getattr(self, name))

    @property
    def first_kernel(self) -> int:
        return 3 if self.kind == "small" else 7

    @property
    def first_stride(self) -> int:
        return 1 if self.kind == "small" else 2


@dataclass(frozen=True)
class InceptionModule:
    """One Inception module: the six widths of Table 1.

    A reduction set to None is absent: `c3_reduce=None` feeds the 3x3 straight from the module
    input, `pool_proj=None` passes the pooled input through, so with all three None this is the
    paper's naive module (Fig. 2a), whose output grows by its input width. `large` is the kind of
    the "5x5" branch: a true 5x5, two stacked 3x3 (same receptive field, 18/25 of the cost), or a
    single 3x3 as torchvision's port has it.
    """

    c1: int
    c3_reduce: int | None
    c3: int
    c5_reduce: int | None
    c5: int
    pool_proj: int | None
    large: LargeKind = "5x5"

    def validate(self, name: str) -> None:
        for width in ("c1", "c3", "c5"):
            _positive(f"{name}.{width}", getattr(self, width))
        for width in ("c3_reduce", "c5_reduce", "pool_proj"):
            _optional_positive(f"{name}.{width}", getattr(self, width))
        _choice(f"{name}.large", self.large, LARGE_KINDS)

    def out_channels(self, in_channels: int) -> int:
        return self.c1 + self.c3 + self.c5 + (self.pool_proj or in_channels)


@dataclass(frozen=True)
class Stage:
    """Inception modules at one resolution, entered through `pool` (None: no downsampling)."""

    modules: tuple[InceptionModule, ...]
    pool: MaxPool | None = MaxPool()


@dataclass(frozen=True)
class AuxHead:
    """The shape of an auxiliary classifier (paper section 5).

    `paper` pools 5x5/3 (14x14 -> 4x4); `adaptive` pools to `size` x `size` whatever the input
    (torchvision). Then a 1x1 conv to `conv`, a linear layer to `fc`, dropout, and the classifier.
    """

    pool: AuxPool = "paper"
    size: int = 4
    conv: int = 128
    fc: int = 1024
    dropout: float = 0.7

    PAPER_KERNEL: ClassVar[int] = 5
    PAPER_STRIDE: ClassVar[int] = 3

    def __post_init__(self) -> None:
        _choice("aux.head.pool", self.pool, AUX_POOLS)
        for name in ("size", "conv", "fc"):
            _positive(f"aux.head.{name}", getattr(self, name))
        _probability("aux.head.dropout", self.dropout)
        object.__setattr__(self, "dropout", float(self.dropout))

    def out_size(self, size: int) -> int:
        """Side length after pooling; 0 where the paper's 5x5 window does not fit."""
        if self.pool == "adaptive":
            return self.size
        k, s = self.PAPER_KERNEL, self.PAPER_STRIDE
        return (size - k) // s + 1 if size >= k else 0


@dataclass(frozen=True)
class Aux:
    """Auxiliary heads on the outputs of the named modules; their losses weigh `weight` each."""

    at: tuple[str, ...] = ()
    weight: float = 0.3
    head: AuxHead = AuxHead()

    def __post_init__(self) -> None:
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)):
            _fail("aux.weight", self.weight, "must be a number")
        if not math.isfinite(self.weight) or self.weight < 0:
            _fail("aux.weight", self.weight, "must be finite and >= 0")
        if len(set(self.at)) != len(self.at):
            _fail("aux.at", list(self.at), "names a module twice")
        object.__setattr__(self, "weight", float(self.weight))


@dataclass(frozen=True)
class ModuleShape:
    """Where a module sits: input side length and channels, output channels."""

    size: int
    in_channels: int
    out_channels: int


@dataclass(frozen=True)
class Genotype:
    """A whole Inception-family network. Modules are named by stage and position as in the
    paper: the first stage is 3, so GoogLeNet's modules are 3a, 3b, 4a, ..., 5b."""

    stem: Stem
    stages: tuple[Stage, ...]
    resolution: int = 224
    in_channels: int = 3
    num_classes: int = 1000
    norm: Norm = "none"
    dropout: float = 0.4
    aux: Aux = Aux()
    shapes: dict[str, ModuleShape] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        _positive("resolution", self.resolution)
        _positive("in_channels", self.in_channels)
        _positive("num_classes", self.num_classes)
        _choice("norm", self.norm, NORMS)
        _probability("dropout", self.dropout)
        object.__setattr__(self, "dropout", float(self.dropout))  # 0 and 0.0: one network, one key
        if not self.stages:
            _fail("stages", list(self.stages), "needs at least one stage")
        for i, stage in enumerate(self.stages):
            if not stage.modules:
                _fail(f"stages[{i}].modules", list(stage.modules), "needs at least one module")
        for name, module in self.named_modules():
            module.validate(name)
        object.__setattr__(self, "shapes", self._trace_shapes())
        for name in self.aux.at:
            if name not in self.shapes:
                _fail("aux.at", name, f"no such module (modules: {', '.join(self.shapes)})")
            size = self.shapes[name].size
            if self.aux.head.out_size(size) < 1:
                _fail(
                    "aux.at",
                    name,
                    f"its {size}x{size} output is too small for the paper's 5x5/3 pool (use aux.head.pool=adaptive)",
                )

    # -- structure -------------------------------------------------------------------------
    def named_modules(self) -> list[tuple[str, InceptionModule]]:
        return [
            (module_name(i, j), module) for i, stage in enumerate(self.stages) for j, module in enumerate(stage.modules)
        ]

    @property
    def stem_out_size(self) -> int:
        return self.stem_sizes()[-1]

    def stem_sizes(self) -> list[int]:
        """Side lengths after the first conv, pool1, and pool2 (the 1x1 and 3x3 keep size)."""
        stem = self.stem
        k, s = stem.first_kernel, stem.first_stride
        first = (self.resolution + 2 * (k // 2) - k) // s + 1
        after1 = stem.pool1.out_size(first) if stem.pool1 else first
        after2 = stem.pool2.out_size(after1) if stem.pool2 else after1
        return [first, after1, after2]

    def _trace_shapes(self) -> dict[str, ModuleShape]:
        sizes = self.stem_sizes()
        if min(sizes) < 1:
            _fail("resolution", self.resolution, "too small for the stem's downsampling")
        size, channels = sizes[-1], self.stem.conv3
        shapes: dict[str, ModuleShape] = {}
        names = iter(name for name, _ in self.named_modules())
        for i, stage in enumerate(self.stages):
            if stage.pool is not None:
                size = stage.pool.out_size(size)
                if size < 1:
                    _fail(
                        "resolution",
                        self.resolution,
                        f"too small: the feature map vanishes at the pool before stage {3 + i}",
                    )
            for module in stage.modules:
                out = module.out_channels(channels)
                shapes[next(names)] = ModuleShape(size, channels, out)
                channels = out
        return shapes

    @property
    def out_channels(self) -> int:
        return list(self.shapes.values())[-1].out_channels

    @property
    def final_size(self) -> int:
        return list(self.shapes.values())[-1].size

    # -- identity and serialisation --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts and lists (tuples become lists) in field order."""
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Any) -> Genotype:
        """The inverse of `to_dict`; unknown or missing keys raise a ValueError naming them."""
        return _build(cls, data, "genotype")

    @property
    def key(self) -> str:
        """12 hex digits of SHA-256 over the canonical JSON: equal networks share a key."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def replace(self, **changes: Any) -> Genotype:
        return dataclasses.replace(self, **changes)

    def map_modules(self, change: Callable[[str, InceptionModule], InceptionModule]) -> Genotype:
        """This genotype with each Inception module replaced by `change(name, module)`; stages,
        pools and everything else kept. Ablations, width scaling and projection all edit
        modules through this one walk."""
        names = iter(name for name, _ in self.named_modules())
        stages = tuple(
            dataclasses.replace(stage, modules=tuple(change(next(names), m) for m in stage.modules))
            for stage in self.stages
        )
        return self.replace(stages=stages)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, (tuple, list)):
        return [_plain(item) for item in obj]
    return obj


# Which dataclass each nested field holds; tuples of dataclasses are listed by their item type.
_NESTED: dict[tuple[type, str], type] = {
    (Genotype, "stem"): Stem,
    (Genotype, "stages"): Stage,
    (Genotype, "aux"): Aux,
    (Stem, "pool1"): MaxPool,
    (Stem, "pool2"): MaxPool,
    (Stage, "modules"): InceptionModule,
    (Stage, "pool"): MaxPool,
    (Aux, "head"): AuxHead,
}
_TUPLES: set[tuple[type, str]] = {(Genotype, "stages"), (Stage, "modules"), (Aux, "at")}


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        _fail(path, data, f"must be a mapping of {cls.__name__} fields")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        _fail(f"{path}.{unknown[0]}", data[unknown[0]], f"unknown field (fields: {', '.join(fields)})")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        where = f"{path}.{name}"
        if value is None and "None" not in str(fields[name].type):
            _fail(where, None, "must not be null")
        nested = _NESTED.get((cls, name))
        if (cls, name) in _TUPLES:
            if not isinstance(value, (list, tuple)):
                _fail(where, value, "must be a list")
            value = tuple(_build(nested, v, f"{where}[{i}]") if nested else v for i, v in enumerate(value))
        elif nested is not None and value is not None:
            value = _build(nested, value, where)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise ValueError(f"{path}: {err}") from None
