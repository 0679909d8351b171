"""Splits of one data set: train and val for the search, test for the single final measurement of
the best trial. Where a data set has an official test split, that is the test split and
validation is carved from the official training set. The splits are tensors in memory or, for
image folders, files streamed from disk (`search.data.folder`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from search.config.schema import ConfigError, DataConfig
from search.data.folder import FolderSplit, normalised
from space.genotype import Genotype
from space.io import resolve

__all__ = ["Split", "Splits", "balanced_subset", "base_genotype", "from_arrays", "minibatch", "split_indices"]


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # N x C x H x W, float32, normalised with the train split's statistics
    labels: torch.Tensor  # N, int64

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Splits:
    """The three splits: tensors in memory (`Split`), or class-per-folder images streamed from
    disk or the cache (`search.data.folder.FolderSplit`, read by `workers` loader processes)."""

    train: Split | FolderSplit
    val: Split | FolderSplit
    test: Split | FolderSplit
    num_classes: int
    channels: int
    resolution: int
    # What a trained model needs beside its weights (kept in its checkpoint, search/training/predict.py):
    # class names by label, and the train split's channel statistics that inputs in [0, 1] are
    # normalised with.
    class_names: tuple[str, ...] = ()
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    workers: int = 0


def minibatch(data: Splits, split: str, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images `index` of a split as the network takes them (normalised float) with their
    labels, whether the split is in memory or on disk (there: undecodable images left out)."""
    part = getattr(data, split)
    if isinstance(part, Split):
        return part.images[index], part.labels[index]
    items = [part[(int(i), 0)] for i in index]
    kept = [(x, y) for x, y in items if y >= 0]
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    return normalised(torch.stack([x for x, _ in kept]), mean, std), torch.tensor([y for _, y in kept])


def base_genotype(spec: str, overrides: Mapping[str, Any], data: Splits | None) -> Genotype:
    """The genotype every trial or variant starts from: a preset or genotype file (`spec`) with
    the config's overrides and, where data is loaded, its input size, channels and classes."""
    shape = (
        {}
        if data is None
        else {"resolution": data.resolution, "in_channels": data.channels, "num_classes": data.num_classes}
    )
    try:
        return resolve(spec, **{**overrides, **shape})
    except ValueError as err:
        raise ConfigError(f"space.base={spec!r}: {err}") from None


def balanced_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of `n` examples, as many of each class as the classes allow (the remainder to
    the classes drawn first), in a seeded random order: fast runs keep the class balance."""
    rng = np.random.default_rng(seed)
    classes, sizes = np.unique(labels, return_counts=True)
    if n >= len(labels):
        return rng.permutation(len(labels))
    share = np.zeros(len(classes), dtype=np.int64)
    left = n
    while left:  # water-filling: small classes give all they have, the rest share what remains
        open_ = np.flatnonzero(share < sizes)
        each = max(1, left // len(open_))
        for i in rng.permutation(open_):
            take = min(each, sizes[i] - share[i], left)
            share[i] += take
            left -= take
            if not left:
                break
    picked = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, share)]
    return rng.permutation(np.concatenate(picked))


def split_indices(labels: np.ndarray, cfg: DataConfig, *, with_test: bool) -> tuple[np.ndarray, ...]:
    """Train, validation and test indices into `labels` (the images after `limit`), by `cfg.seed`.

    `val_size` null: a class-balanced `subset` (where set) is drawn first and split by
    `val_fraction`, as always. `val_size` set: the test split (where the data has no official one)
    and then `val_size` class-balanced validation images are held out of the whole pool first, and
    `subset` draws the training images from what is left: validation no longer shrinks or moves
    with the training subset, and never shares an image with it."""
    if cfg.val_size is None:
        keep = balanced_subset(labels, cfg.subset, cfg.seed) if cfg.subset is not None else np.arange(len(labels))
        order = keep[np.random.default_rng(cfg.seed).permutation(len(keep))]
        n_val = max(1, round(cfg.val_fraction * len(keep)))
        n_test = max(1, round(cfg.test_fraction * len(keep))) if with_test else 0  # type: ignore[attr-defined]
        return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]
    order = np.random.default_rng(cfg.seed).permutation(len(labels))
    n_test = max(1, round(cfg.test_fraction * len(labels))) if with_test else 0  # type: ignore[attr-defined]
    test, rest = order[:n_test], order[n_test:]
    if cfg.val_size >= len(rest):
        raise ConfigError(
            f"data.val_size={cfg.val_size}: leaves no training images (the data has {len(rest)} beside its test split)"
        )
    val = rest[balanced_subset(labels[rest], cfg.val_size, cfg.seed)]
    pool = np.setdiff1d(rest, val)
    pool = pool[np.random.default_rng(cfg.seed + 1).permutation(len(pool))]
    train = pool[balanced_subset(labels[pool], cfg.subset, cfg.seed)] if cfg.subset is not None else pool
    return train, val, test


def _resize(images: torch.Tensor, resolution: int | None) -> torch.Tensor:
    if resolution is None or resolution == images.shape[-1]:
        return images
    antialias = resolution < images.shape[-1]
    return F.interpolate(images, size=resolution, mode="bilinear", align_corners=False, antialias=antialias)


def from_arrays(
    cfg: DataConfig,
    images: np.ndarray,
    labels: np.ndarray,
    official_test: tuple[np.ndarray, np.ndarray] | None,
    *,
    names: Callable[[int], tuple[str, ...]],
    num_classes: int | None = None,
) -> Splits:
    """Images in memory, split as every source is: `limit`, then `split_indices` (the subset,
    validation and test, where the data has no official one) by `cfg.seed`; resized, and
    normalised with the train split's channel statistics. `num_classes`: where the data names
    more classes than a subset may show; `names(num_classes)`: the source's label names."""
    if cfg.limit is not None:
        images, labels = images[: cfg.limit], labels[: cfg.limit]
    if len(labels) < 10:
        raise ConfigError(f"data.name={cfg.name!r}: only {len(labels)} images, need at least 10")
    train_idx, val_idx, test_idx = split_indices(labels, cfg, with_test=official_test is None)
    x = torch.from_numpy(images)
    y = torch.from_numpy(labels)
    parts = {"train": (x[train_idx], y[train_idx]), "val": (x[val_idx], y[val_idx])}
    parts["test"] = (
        (torch.from_numpy(official_test[0]), torch.from_numpy(official_test[1]))
        if official_test is not None
        else (x[test_idx], y[test_idx])
    )
    parts = {k: (_resize(xs, cfg.resolution), ys) for k, (xs, ys) in parts.items()}
    mean = parts["train"][0].mean(dim=(0, 2, 3), keepdim=True)
    std = parts["train"][0].std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    splits = {k: Split(((xs - mean) / std).contiguous(), ys) for k, (xs, ys) in parts.items()}
    num_classes = num_classes or int(max(int(ys.max()) for _, ys in parts.values())) + 1
    train = splits["train"]
    return Splits(
        train=train,
        val=splits["val"],
        test=splits["test"],
        num_classes=num_classes,
        channels=train.images.shape[1],
        resolution=train.images.shape[-1],
        class_names=names(num_classes),
        mean=tuple(mean.flatten().tolist()),
        std=tuple(std.flatten().tolist()),
    )
