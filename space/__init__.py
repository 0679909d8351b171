"""The Inception search space: genotypes, presets, the model builder and exact cost accounting."""

from __future__ import annotations

from typing import Any

from space.accounting import BlockCost, Cost, cost
from space.genotype import Aux, AuxHead, Genotype, InceptionModule, MaxPool, Stage, Stem
from space.io import dump, load
from space.presets import PRESETS, preset
from space.ranges import Ranges, random_genotype, sample
from space.scaling import scale_widths

__all__ = [
    "PRESETS",
    "Aux",
    "AuxHead",
    "BlockCost",
    "Cost",
    "Genotype",
    "InceptionModule",
    "MaxPool",
    "Ranges",
    "Stage",
    "Stem",
    "build_model",
    "cost",
    "dump",
    "load",
    "preset",
    "random_genotype",
    "sample",
    "scale_widths",
]


def __getattr__(name: str) -> Any:
    """`space.build_model` imports torch when first used, not with the package: genotypes, the
    exact cost counter and the ranges need no torch (`import space.accounting` stays torch-free)."""
    if name == "build_model":
        from space.model import build_model

        return build_model
    raise AttributeError(f"module 'space' has no attribute {name!r}")
