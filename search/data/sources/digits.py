"""scikit-learn's digits: shipped with the package, no download; saturated, so only for tiny runs."""

from __future__ import annotations

import numpy as np

from search.config.schema import DataConfig, DigitsData
from search.data.source import Arrays, ArraySource

__all__ = ["SOURCE"]


def _read(cfg: DataConfig) -> Arrays:
    from sklearn.datasets import load_digits  # scikit-learn takes a second to import: only for digits

    bunch = load_digits()
    return (bunch.images[:, None] / 16.0).astype(np.float32), bunch.target.astype(np.int64), None


SOURCE = ArraySource(config=DigitsData, read=_read)
