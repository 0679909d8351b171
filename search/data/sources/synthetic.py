"""One random smooth template per class plus noise: learnable in an epoch or two (fast tests)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from search.config.schema import DataConfig
from search.data.source import Arrays, ArraySource

__all__ = ["SOURCES", "SyntheticData"]


@dataclass
class SyntheticData(DataConfig):
    """One random smooth template per class plus noise: learnable in an epoch (fast tests)."""

    name: str = "synthetic"
    test_fraction: float = 0.2
    n_samples: int = 1024
    n_classes: int = 4
    channels: int = 3
    size: int = 8


def _read(cfg: DataConfig) -> Arrays:
    assert isinstance(cfg, SyntheticData)
    rng = np.random.default_rng(cfg.seed)
    coarse = rng.normal(size=(cfg.n_classes, cfg.channels, 4, 4)).astype(np.float32)
    templates = F.interpolate(torch.from_numpy(coarse), size=cfg.size, mode="bilinear", align_corners=False).numpy()
    labels = rng.integers(0, cfg.n_classes, size=cfg.n_samples)
    noise = rng.normal(scale=0.5, size=(cfg.n_samples, cfg.channels, cfg.size, cfg.size))
    return (templates[labels] + noise).astype(np.float32), labels.astype(np.int64), None


SOURCES = (ArraySource(config=SyntheticData, read=_read),)
