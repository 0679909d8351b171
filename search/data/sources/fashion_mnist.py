"""Fashion-MNIST, or any MNIST-family IDX folder (the main job's benchmark); its official test set
is the test split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from search.config.schema import DataConfig
from search.data.idx import FASHION_MNIST_DIR, read_idx_split
from search.data.source import Arrays, ArraySource

__all__ = ["CLASSES", "FashionMnistData", "SOURCES"]


@dataclass
class FashionMnistData(DataConfig):
    """Fashion-MNIST or any MNIST-family IDX folder (`path`; null: Debian's package folder);
    its official test set is the test split."""

    name: str = "fashion-mnist"
    path: Optional[str] = None


CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _read(cfg: DataConfig) -> Arrays:
    folder = Path(getattr(cfg, "path", None) or FASHION_MNIST_DIR).expanduser()
    return (*read_idx_split(folder, "train"), read_idx_split(folder, "test"))


SOURCES = (ArraySource(config=FashionMnistData, read=_read, names=lambda cfg: list(CLASSES)),)
