"""CIFAR-100 in its python format, from a local folder; its test file is the test split, its
labels fine (100 classes) or coarse (20 superclasses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from search.config.schema import ConfigError, DataConfig, one_of
from search.data.source import Arrays, ArraySource
from search.data.sources._cifar import meta_names, unpickle
from search.data.sources._files import existing

__all__ = ["Cifar100Data", "SOURCES"]


@dataclass
class Cifar100Data(DataConfig):
    """CIFAR-100 in its python format (`path`: the folder holding cifar-100-python/ or its
    train/test/meta files); `labels`: fine (100 classes) or coarse (20 superclasses)."""

    name: str = "cifar100"
    path: Optional[str] = None
    path_hint: ClassVar[Optional[str]] = "folder"
    labels: str = "fine"
    augment: bool = True

    def check(self) -> None:
        super().check()
        one_of("data.labels", self.labels, ("fine", "coarse"))


def _read(cfg: DataConfig) -> Arrays:
    """The `train` and `test` files, with the configured labels."""
    assert isinstance(cfg, Cifar100Data)
    root = existing(cfg.path, folder=True)
    folder = root / "cifar-100-python" if (root / "cifar-100-python").is_dir() else root
    missing = [n for n in ("train", "test") if not (folder / n).is_file()]
    if missing:
        raise ConfigError(f"data.path={str(root)!r}: not a CIFAR-100 python folder (missing {', '.join(missing)})")
    key = b"fine_labels" if cfg.labels == "fine" else b"coarse_labels"
    parts = []
    for name in ("train", "test"):
        path = folder / name
        try:
            batch = unpickle(path)
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            ys = np.asarray(batch[key], dtype=np.int64)
        except Exception as err:
            raise ConfigError(
                f"data.path={str(path)!r}: not a CIFAR-100 python file ({err.__class__.__name__}: {err})"
            ) from None
        if len(data) != len(ys):
            raise ConfigError(f"data.path={str(path)!r}: {len(data)} images but {len(ys)} labels")
        parts.append(((data / 255.0).astype(np.float32), ys))
    return *parts[0], parts[1]


def _names(cfg: DataConfig) -> list[str]:
    assert isinstance(cfg, Cifar100Data)
    key = b"fine_label_names" if cfg.labels == "fine" else b"coarse_label_names"
    return meta_names(cfg, ("cifar-100-python/meta", "meta"), key)


def _classes(cfg: DataConfig) -> int:
    """Every class, even one a subset leaves out."""
    assert isinstance(cfg, Cifar100Data)
    return 100 if cfg.labels == "fine" else 20


SOURCES = (ArraySource(config=Cifar100Data, read=_read, names=_names, classes=_classes),)
