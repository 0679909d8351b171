"""The search ranges around a base preset, and the one function that samples a genotype.

`sample(draw, ranges)` makes every architectural decision of a search, by name, through a
`Draw`: `RandomDraw` backs it with a seeded `random.Random` (baselines, tests) and the search
package backs it with an Optuna trial. So the space is written once, its parameter names are
stable paths ("4b.c3", "aux.weight"), and random and Optuna searches sample the same space.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from space.genotype import LARGE_KINDS, Genotype, InceptionModule, Stage, module_name
from space.presets import preset
from space.scaling import round_width

__all__ = ["Draw", "RandomDraw", "Ranges", "largest", "random_genotype", "sample", "smallest"]

T = TypeVar("T")


class Draw(Protocol):
    """Where the values of a sample come from: a seeded RNG or an Optuna trial."""

    def int(self, name: str, low: int, high: int, step: int, *, log: bool = False) -> int: ...

    def float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...

    def choice(self, name: str, choices: Sequence[T]) -> T: ...


class RandomDraw:
    """Uniform draws from a seeded RNG; records what it drew in `params`."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self.params: dict[str, Any] = {}

    def int(self, name: str, low: int, high: int, step: int, *, log: bool = False) -> int:
        if log:  # as Optuna draws a log int: log-uniform over [low - 0.5, high + 0.5], rounded
            value = min(high, max(low, round(math.exp(self._rng.uniform(math.log(low - 0.5), math.log(high + 0.5))))))
        else:
            value = self._rng.randrange(low, high + 1, step)
        self.params[name] = value
        return value

    def float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        value = math.exp(self._rng.uniform(math.log(low), math.log(high))) if log else self._rng.uniform(low, high)
        self.params[name] = value
        return value

    def choice(self, name: str, choices: Sequence[T]) -> T:
        value = self._rng.choice(list(choices))
        self.params[name] = value
        return value


@dataclass(frozen=True)
class Ranges:
    """What a search may change in its base preset.

    Each branch width of a module ranges over `width_scale` times the base module's width
    (the base stage's last module stands in for positions beyond it), snapped to `width_step`.
    A reduction is `ratio * branch width` for a ratio in `reduce_ratios`; None removes the 1x1
    reduction (the naive branch). Aux heads may sit on any existing module in `aux_modules`.

    These fields, with these defaults, are also the `space.*` keys of the search's config:
    `search.config.schema.SpaceConfig` is derived from them, so a new searched range is declared here once.
    """

    base: str = "googlenet-small"
    modules_per_stage: tuple[tuple[int, int], ...] = ((1, 2), (1, 5), (1, 2))
    width_scale: tuple[float, float] = (0.5, 2.0)
    width_step: int = 4
    reduce_ratios: tuple[float | None, ...] = (None, 0.25, 0.5, 0.75, 1.0)
    large_kinds: tuple[str, ...] = LARGE_KINDS
    aux_modules: tuple[str, ...] = ("4a", "4b", "4c", "4d", "4e")
    aux_weight: tuple[float, float] = (0.0, 1.0)
    # module: every module's widths, reductions and large-branch kind drawn on its own (35-67
    # decisions). stage: shared per stage (modules, one width multiplier, one branch split, one
    # reduce ratio), one large-branch kind and one aux placement for the network: at most 16
    # decisions, the compact design space RegNet argues for (docs/space.md).
    share: str = "module"

    def __post_init__(self) -> None:
        if self.share not in SHARES:
            raise ValueError(f"share={self.share!r}: must be one of {', '.join(SHARES)}")
        lo, hi = self.width_scale
        if not 0 < lo <= hi:
            raise ValueError(f"width_scale={list(self.width_scale)!r}: needs 0 < low <= high")
        if self.width_step <= 0:
            raise ValueError(f"width_step={self.width_step!r}: must be positive")
        for i, (low, high) in enumerate(self.modules_per_stage):
            if not 1 <= low <= high:
                raise ValueError(f"modules_per_stage[{i}]={[low, high]!r}: needs 1 <= low <= high")
        for ratio in self.reduce_ratios:
            if ratio is not None and not ratio > 0:
                raise ValueError(f"reduce_ratios={list(self.reduce_ratios)!r}: ratios must be > 0 or none")
        if not self.reduce_ratios:
            raise ValueError("reduce_ratios=[]: needs at least one choice")
        bad = [k for k in self.large_kinds if k not in LARGE_KINDS]
        if bad or not self.large_kinds:
            raise ValueError(f"large_kinds={list(self.large_kinds)!r}: choose from {', '.join(LARGE_KINDS)}")
        low, high = self.aux_weight
        if not 0 <= low <= high:
            raise ValueError(f"aux_weight={list(self.aux_weight)!r}: needs 0 <= low <= high")


def _width(draw: Draw, name: str, base: int, ranges: Ranges) -> int:
    step = ranges.width_step
    low = round_width(base * ranges.width_scale[0], step)
    high = max(low, round_width(base * ranges.width_scale[1], step))
    return draw.int(name, low, high, step)


def _reduce(draw: Draw, name: str, width: int, ranges: Ranges) -> int | None:
    ratio = draw.choice(name, ranges.reduce_ratios)
    return None if ratio is None else round_width(ratio * width, ranges.width_step)


def _module(draw: Draw, name: str, base: InceptionModule, ranges: Ranges) -> InceptionModule:
    c3 = _width(draw, f"{name}.c3", base.c3, ranges)
    c5 = _width(draw, f"{name}.c5", base.c5, ranges)
    return InceptionModule(
        c1=_width(draw, f"{name}.c1", base.c1, ranges),
        c3_reduce=_reduce(draw, f"{name}.r3", c3, ranges),
        c3=c3,
        c5_reduce=_reduce(draw, f"{name}.r5", c5, ranges),
        c5=c5,
        pool_proj=_width(draw, f"{name}.pp", base.pool_proj or base.c1, ranges),
        large=draw.choice(f"{name}.large", ranges.large_kinds),
    )


SHARES = ("module", "stage")
# share=stage: the branch a stage's split widens (x SPLIT_GAIN over the base's proportions), or none.
SPLITS = ("even", "c1", "c3", "c5", "pool_proj")
SPLIT_GAIN = 1.5


def _stage_module(
    base: InceptionModule, width: float, split: str, ratio: float | None, large: str, step: int
) -> InceptionModule:
    """A module of a shared stage: the base's branch widths times the stage's multiplier (the
    split's branch once more by SPLIT_GAIN), reductions at the stage's ratio."""

    def branch(name: str, base_width: int) -> int:
        return max(step, round_width(base_width * width * (SPLIT_GAIN if name == split else 1.0), step))

    c3, c5 = branch("c3", base.c3), branch("c5", base.c5)
    return InceptionModule(
        c1=branch("c1", base.c1),
        c3_reduce=None if ratio is None else max(step, round_width(ratio * c3, step)),
        c3=c3,
        c5_reduce=None if ratio is None else max(step, round_width(ratio * c5, step)),
        c5=c5,
        pool_proj=branch("pool_proj", base.pool_proj or base.c1),
        large=large,
    )


def _shared_stages(draw: Draw, ranges: Ranges, base: Genotype) -> list[Stage]:
    large = draw.choice("large", ranges.large_kinds)
    stages = []
    for i, (stage, (low, high)) in enumerate(zip(base.stages, ranges.modules_per_stage)):
        name = f"stage{3 + i}"
        count = draw.int(f"{name}.modules", low, high, 1)
        width = draw.float(f"{name}.width", *ranges.width_scale)
        split = draw.choice(f"{name}.split", SPLITS)
        ratio = draw.choice(f"{name}.reduce", ranges.reduce_ratios)
        modules = tuple(
            _stage_module(stage.modules[min(j, len(stage.modules) - 1)], width, split, ratio, large, ranges.width_step)
            for j in range(count)
        )
        stages.append(Stage(modules=modules, pool=stage.pool))
    return stages


def _module_stages(draw: Draw, ranges: Ranges, base: Genotype) -> list[Stage]:
    stages = []
    for i, (stage, (low, high)) in enumerate(zip(base.stages, ranges.modules_per_stage)):
        count = draw.int(f"stage{3 + i}.modules", low, high, 1)
        modules = tuple(
            _module(draw, module_name(i, j), stage.modules[min(j, len(stage.modules) - 1)], ranges)
            for j in range(count)
        )
        stages.append(Stage(modules=modules, pool=stage.pool))
    return stages


# share=stage's one aux decision. Its values never change with the drawn module count (Optuna
# refuses a categorical whose choices differ between trials): early is the first candidate module,
# late the paper's 4d (or the last candidate when 4d is not there), both is the pair.
AUX_PLACEMENTS = ("none", "early", "late", "both")


def _aux_at(draw: Draw, ranges: Ranges, names: list[str]) -> tuple[str, ...]:
    """Aux placements: one yes/no per candidate module, or (share=stage) one choice of
    AUX_PLACEMENTS."""
    candidates = [name for name in ranges.aux_modules if name in names]
    if ranges.share == "module":
        return tuple(name for name in candidates if draw.choice(f"aux.{name}", (False, True)))
    if not candidates:
        return ()
    early, late = candidates[0], "4d" if "4d" in candidates else candidates[-1]
    choice = draw.choice("aux.at", AUX_PLACEMENTS)
    return {"none": (), "early": (early,), "late": (late,), "both": tuple(dict.fromkeys((early, late)))}[choice]


def sample(draw: Draw, ranges: Ranges, base: Genotype | None = None) -> Genotype:
    """A genotype drawn from `ranges` around `base` (default: the preset `ranges.base`).

    Stem, pools, resolution, classes, normalisation, dropout and the aux head's shape come from
    the base; module counts, branch widths, reductions, large-branch kinds and aux placement and
    weight are drawn.
    """
    base = base if base is not None else preset(ranges.base)
    if len(ranges.modules_per_stage) != len(base.stages):
        raise ValueError(
            f"modules_per_stage={[list(r) for r in ranges.modules_per_stage]!r}: "
            f"needs one range per stage of {ranges.base!r} ({len(base.stages)})"
        )
    stages = _shared_stages(draw, ranges, base) if ranges.share == "stage" else _module_stages(draw, ranges, base)
    draft = base.replace(stages=tuple(stages), aux=dataclasses.replace(base.aux, at=()))
    at = _aux_at(draw, ranges, [name for name, _ in draft.named_modules()])
    weight = draw.float("aux.weight", *ranges.aux_weight) if at else base.aux.weight
    return draft.replace(aux=dataclasses.replace(base.aux, at=at, weight=weight))


class _CheapestDraw:
    """Every decision at its cheap end: fewest modules, lowest widths, no aux heads, one fixed
    reduction choice and large-branch kind (`smallest` tries each)."""

    def __init__(self, reduce: float | None, large: str) -> None:
        self.reduce = reduce
        self.large = large

    def int(self, name: str, low: int, high: int, step: int, *, log: bool = False) -> int:
        return low

    def float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        return low

    def choice(self, name: str, choices: Sequence[T]) -> T:
        if name.startswith("aux.") or name.endswith(".split"):
            return choices[0]  # (False, True) or ("none", ...): no head; "even": no branch widened
        return self.large if name.endswith("large") else self.reduce  # type: ignore[return-value]


def smallest(ranges: Ranges, base: Genotype | None = None) -> Genotype:
    """The cheapest network (inference MACs) the ranges hold around `base`: widths and module
    counts at their low ends, no aux heads, and the cheapest of the uniform choices of reduction
    (the smallest ratio, or none) and large-branch kind. A budget below its cost admits nothing."""
    from space.accounting import cost

    numeric = [r for r in ranges.reduce_ratios if r is not None]
    reduces = ([min(numeric)] if numeric else []) + ([None] if None in ranges.reduce_ratios else [])
    candidates = [sample(_CheapestDraw(r, k), ranges, base) for r in reduces for k in ranges.large_kinds]
    return min(candidates, key=lambda g: (cost(g).macs, cost(g).params))


class _WidestDraw:
    """Every decision at its wide end: most modules, highest widths, the widest reduction (the
    largest ratio) and the first large-branch kind, no branch widened by a split, no aux heads."""

    def int(self, name: str, low: int, high: int, step: int, *, log: bool = False) -> int:
        return high

    def float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        return high

    def choice(self, name: str, choices: Sequence[T]) -> T:
        if name.endswith((".r3", ".r5", ".reduce")):
            numeric = [c for c in choices if c is not None]
            return max(numeric) if numeric else choices[0]  # type: ignore[type-var, return-value]
        return choices[0]  # aux: (False, True) or ("none", ...); split: "even"; large: the first kind


def largest(ranges: Ranges, base: Genotype | None = None) -> Genotype:
    """The network with every width, module count and reduction of the ranges at its high end
    (no aux heads): the top of a supernet's sandwich before its projection onto a budget."""
    return sample(_WidestDraw(), ranges, base)


def random_genotype(seed: int, ranges: Ranges | None = None) -> Genotype:
    """A uniformly random genotype from `ranges` (default ranges around `googlenet-small`)."""
    return sample(RandomDraw(seed), ranges or Ranges())
