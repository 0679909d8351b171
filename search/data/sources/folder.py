"""Class-per-folder image trees, streamed from disk or the decode-once cache (search/data/folder.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.config.schema import ConfigError, DataConfig, FolderData
from search.data.folder import folder_splits, loader_workers, scan
from search.data.splits import Splits, balanced_subset, split_indices

__all__ = ["SOURCE"]


def _load(cfg: FolderData) -> Splits:
    """A class-per-folder tree, split as every other source is (limit, subset, seed; its val/
    folder, where there is one, is the official test split), read by search/data/folder.py."""
    if not cfg.path:
        raise ConfigError("data.path=None: data=folder needs data.path=<folder holding train/<class>/...>")
    root = Path(cfg.path).expanduser()
    tree = scan(root)
    files = tree.train[: cfg.limit] if cfg.limit is not None else tree.train
    if cfg.subset is not None:
        files = [files[i] for i in balanced_subset(np.array([label for _, label in files]), cfg.subset, cfg.seed)]
    train_idx, val_idx, test_idx = split_indices(len(files), cfg, with_test=tree.val is None)
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


@dataclass(frozen=True)
class _FolderSource:
    config: type[DataConfig] = FolderData

    def load(self, cfg: DataConfig) -> Splits:
        assert isinstance(cfg, FolderData)
        return _load(cfg)


SOURCE = _FolderSource()
