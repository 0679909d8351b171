"""What a data source is: its config class (whose `name` is `data=<name>`) and how it loads into
splits, class names included. Each source is one module of search/data/sources/, registered once
in its `SOURCES`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from search.config.schema import DataConfig
from search.data.splits import Splits, from_arrays

__all__ = ["Arrays", "ArraySource", "Source"]

# Images (N x C x S x S float32 in [0, 1]), labels, and the official test split where there is one.
Arrays = tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]


class Source(Protocol):
    config: type[DataConfig]

    def load(self, cfg: DataConfig) -> Splits: ...


def _no_names(cfg: DataConfig) -> list[str]:
    return []


@dataclass(frozen=True)
class ArraySource:
    """A source read whole into memory by `read`; `names` gives its label names where it has them
    (else the labels themselves), `classes` how many classes it has where a subset may hide some."""

    config: type[DataConfig]
    read: Callable[[DataConfig], Arrays]
    names: Callable[[DataConfig], list[str]] = _no_names
    classes: Callable[[DataConfig], int | None] = lambda cfg: None

    def load(self, cfg: DataConfig) -> Splits:
        images, labels, official_test = self.read(cfg)
        return from_arrays(
            cfg, images, labels, official_test, names=lambda n: self._class_names(cfg, n), num_classes=self.classes(cfg)
        )

    def _class_names(self, cfg: DataConfig, num_classes: int) -> tuple[str, ...]:
        """The data set's own names where it has one per class, else the labels."""
        names = self.names(cfg)
        return tuple(names) if len(names) == num_classes else tuple(str(i) for i in range(num_classes))
