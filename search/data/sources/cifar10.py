"""CIFAR-10 in its python format, from a local folder; its test batch is the test split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np

from search.config.schema import ConfigError, DataConfig
from search.data.source import Arrays, ArraySource
from search.data.sources._cifar import meta_names, unpickle
from search.data.sources._files import existing

__all__ = ["CLASSES", "Cifar10Data", "SOURCES"]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass
class Cifar10Data(DataConfig):
    """CIFAR-10 in its python format (`path`: the folder); its test batch is the test split."""

    name: str = "cifar10"
    path: Optional[str] = None
    path_hint: ClassVar[Optional[str]] = "folder"


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = unpickle(path)
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as err:  # any corruption: one line naming the file
        raise ConfigError(
            f"data.path={str(path)!r}: not a CIFAR-10 python batch ({err.__class__.__name__}: {err})"
        ) from None
    if len(data) != len(labels):
        raise ConfigError(f"data.path={str(path)!r}: {len(data)} images but {len(labels)} labels")
    return (data / 255.0).astype(np.float32), labels


def _read(cfg: DataConfig) -> Arrays:
    """The five training batches and the official test batch."""
    root = existing(getattr(cfg, "path", None), folder=True)
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise ConfigError(f"data.path={str(root)!r}: not a CIFAR-10 python folder (missing {', '.join(missing)})")
    train = [_batch(folder / n) for n in names[:5]]
    return np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), _batch(folder / "test_batch")


def _names(cfg: DataConfig) -> list[str]:
    return meta_names(cfg, ("cifar-10-batches-py/batches.meta", "batches.meta"), b"label_names") or list(CLASSES)


SOURCES = (ArraySource(config=Cifar10Data, read=_read, names=_names),)
