"""scikit-learn's digits: shipped with the package, no download; saturated, so only for tiny runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from search.config.schema import DataConfig
from search.data.source import Arrays, ArraySource

__all__ = ["DigitsData", "SOURCES"]


@dataclass
class DigitsData(DataConfig):
    """scikit-learn's digits; the test split is carved out too (`test_fraction`)."""

    name: str = "digits"
    test_fraction: float = 0.2


def _read(cfg: DataConfig) -> Arrays:
    from sklearn.datasets import load_digits  # scikit-learn takes a second to import: only for digits

    bunch = load_digits()
    return (bunch.images[:, None] / 16.0).astype(np.float32), bunch.target.astype(np.int64), None


SOURCES = (ArraySource(config=DigitsData, read=_read),)
