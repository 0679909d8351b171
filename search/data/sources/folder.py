"""Class-per-folder image trees, streamed from disk or the decode-once cache (search/data/folder.py)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np

from search.config.schema import ConfigError, DataConfig, fail, one_of
from search.data.folder import FolderSplit, Transform, build_cache, channel_stats, scan
from search.data.splits import Splits, split_indices

__all__ = ["FolderData", "SOURCES", "loader_workers", "train_transform"]

log = logging.getLogger(__name__)


@dataclass
class FolderData(DataConfig):
    """Class-per-folder images (`path`/train/<class>/*, optionally `path`/val/<class>/*, which
    is then the test split), streamed from disk by `workers` processes (null: one per core, up to
    8) or decoded once into a cache (`cache`; search/data/folder.py). `augmentation` (when `augment`):
    paper (random crops of 8-100% of the area, aspect 3/4-4/3, flips), light (35-100%, flips) or
    off; `photometric` adds brightness/contrast/saturation jitter. Images are converted to
    `channels` (1: grey, 3: RGB) and cropped to `resolution`."""

    name: str = "folder"
    path: Optional[str] = None
    path_hint: ClassVar[Optional[str]] = "folder"
    resolution: Optional[int] = 224
    test_fraction: float = 0.1
    channels: int = 3
    augment: bool = True
    augmentation: str = "paper"
    photometric: bool = False
    cache: bool = False
    workers: Optional[int] = None

    def check(self) -> None:
        super().check()
        one_of("data.augmentation", self.augmentation, ("paper", "light", "off"))
        if self.channels not in (1, 3):
            fail("data.channels", self.channels, "must be 1 (grey) or 3 (RGB)")
        if self.resolution is None:
            fail("data.resolution", None, "data=folder needs a crop size (e.g. 224, 64)")
        if self.workers is not None and self.workers < 0:
            fail("data.workers", self.workers, "must be >= 0 (0: load in the training process) or null (one per core)")


def _load(cfg: FolderData) -> Splits:
    """A class-per-folder tree, split as every other source is (limit, subset, seed; its val/
    folder, where there is one, is the official test split), read by search/data/folder.py."""
    if not cfg.path:
        raise ConfigError("data.path=None: data=folder needs data.path=<folder holding train/<class>/...>")
    root = Path(cfg.path).expanduser()
    tree = scan(root)
    files = tree.train[: cfg.limit] if cfg.limit is not None else tree.train
    labels = np.array([label for _, label in files])
    train_idx, val_idx, test_idx = split_indices(labels, cfg, with_test=tree.val is None)
    parts = {
        "train": [files[i] for i in train_idx],
        "val": [files[i] for i in val_idx],
        "test": tree.val if tree.val is not None else [files[i] for i in test_idx],
    }
    splits, mean, std = folder_splits(cfg, root, parts)
    return Splits(
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        num_classes=len(tree.classes),
        channels=cfg.channels,
        resolution=splits["train"].transform.resolution,
        class_names=tree.classes,
        mean=mean,
        std=std,
        workers=loader_workers(cfg),
    )


def folder_splits(
    cfg: FolderData, root: Path, parts: dict[str, list[tuple[Path, int]]]
) -> tuple[dict[str, FolderSplit], tuple[float, ...], tuple[float, ...]]:
    """train/val/test FolderSplits of the files `search.data.sources` split, each with its transform
    (and its cache when `cfg.cache`), and the train split's channel mean and std."""
    assert cfg.resolution is not None  # FolderData.check: data=folder needs a crop size
    workers = loader_workers(cfg)
    train_t = train_transform(cfg)
    eval_t = Transform(cfg.resolution, cfg.channels, train=False)
    splits: dict[str, FolderSplit] = {}
    skipped = 0
    for name, part in parts.items():
        cache = None
        if cfg.cache:
            cache = build_cache(part, root=root, resolution=cfg.resolution, channels=cfg.channels, workers=workers)
            skipped += int(cache[1].sum())
        splits[name] = FolderSplit(part, train_t if name == "train" else eval_t, cache)
    if skipped:
        log.warning("data cache: %d image(s) could not be decoded; training and evaluation skip them", skipped)
    mean, std = channel_stats(splits["train"].with_transform(eval_t))
    return splits, mean, std


def train_transform(cfg: FolderData) -> Transform:
    """The training split's crop policy: `data.augmentation` when `data.augment`, else the
    evaluation crop."""
    assert cfg.resolution is not None  # FolderData.check: data=folder needs a crop size
    policy = cfg.augmentation if cfg.augment else "off"
    return Transform(cfg.resolution, cfg.channels, train=cfg.augment, policy=policy, photometric=cfg.photometric)


def loader_workers(cfg: FolderData) -> int:
    """`data.workers`, or one loader process per core (up to 8)."""
    return cfg.workers if cfg.workers is not None else max(1, min(8, os.cpu_count() or 2))


@dataclass(frozen=True)
class _FolderSource:
    config: type[DataConfig] = FolderData

    def load(self, cfg: DataConfig) -> Splits:
        assert isinstance(cfg, FolderData)
        return _load(cfg)


SOURCES = (_FolderSource(),)
