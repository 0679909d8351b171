"""Image classification data held in memory as tensors, with fixed train/val/test splits.

Sources: Fashion-MNIST and any MNIST-family IDX folder (the main job's benchmark), scikit-learn's
digits (shipped with the package, no download; saturated, so only for tiny runs), synthetic class
templates plus noise (fast tests), CIFAR-10 from a local folder in its standard python format,
and any `.npz` of images and labels. Where a data set has an official test split, that is the
test split and validation is carved from the official training set. The search only ever sees
`train` and `val`; `test` is for the single final measurement of the best trial.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from search.config.schema import Cifar100Data, ConfigError, DataConfig, FolderData, SyntheticData
from search.data.folder import FolderSplit, folder_splits, loader_workers, normalised, scan
from search.data.idx import FASHION_MNIST_DIR, read_idx_split
from space.genotype import Genotype
from space.io import resolve

__all__ = ["Split", "Splits", "balanced_subset", "base_genotype", "load_data", "minibatch"]


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


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images[:, None] / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def _synthetic(cfg: SyntheticData) -> tuple[np.ndarray, np.ndarray]:
    """One random smooth template per class, plus noise: learnable in an epoch or two."""
    rng = np.random.default_rng(cfg.seed)
    coarse = rng.normal(size=(cfg.n_classes, cfg.channels, 4, 4)).astype(np.float32)
    templates = F.interpolate(torch.from_numpy(coarse), size=cfg.size, mode="bilinear", align_corners=False).numpy()
    labels = rng.integers(0, cfg.n_classes, size=cfg.n_samples)
    noise = rng.normal(scale=0.5, size=(cfg.n_samples, cfg.channels, cfg.size, cfg.size))
    return (templates[labels] + noise).astype(np.float32), labels.astype(np.int64)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR-10 batches (dicts of bytes, lists and numpy arrays) and nothing else, so a
    crafted file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden global {module}.{name}")


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as err:  # any corruption: one line naming the file
        raise ConfigError(
            f"data.path={str(path)!r}: not a CIFAR-10 python batch ({err.__class__.__name__}: {err})"
        ) from None
    if len(data) != len(labels):
        raise ConfigError(f"data.path={str(path)!r}: {len(data)} images but {len(labels)} labels")
    return (data / 255.0).astype(np.float32), labels


def _cifar10(root: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The five training batches and the official test batch."""
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise ConfigError(f"data.path={str(root)!r}: not a CIFAR-10 python folder (missing {', '.join(missing)})")
    train = [_cifar_batch(folder / n) for n in names[:5]]
    test = _cifar_batch(folder / "test_batch")
    return (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])), test


def _cifar100(root: Path, labels: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The `train` and `test` files; fine (100) or coarse (20) labels."""
    folder = root / "cifar-100-python" if (root / "cifar-100-python").is_dir() else root
    missing = [n for n in ("train", "test") if not (folder / n).is_file()]
    if missing:
        raise ConfigError(f"data.path={str(root)!r}: not a CIFAR-100 python folder (missing {', '.join(missing)})")
    key = b"fine_labels" if labels == "fine" else b"coarse_labels"
    parts = []
    for name in ("train", "test"):
        path = folder / name
        try:
            batch = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            ys = np.asarray(batch[key], dtype=np.int64)
        except Exception as err:
            raise ConfigError(
                f"data.path={str(path)!r}: not a CIFAR-100 python file ({err.__class__.__name__}: {err})"
            ) from None
        if len(data) != len(ys):
            raise ConfigError(f"data.path={str(path)!r}: {len(data)} images but {len(ys)} labels")
        parts.append(((data / 255.0).astype(np.float32), ys))
    return parts[0], parts[1]


def _npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images under `images`/`x`/`X`, labels under `labels`/`y`/`Y`; NHW, NHWC or NCHW."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as err:
        raise ConfigError(f"data.path={str(path)!r}: not a readable .npz ({err.__class__.__name__})") from None
    images = next((arrays[k] for k in ("images", "x", "X") if k in arrays), None)
    labels = next((arrays[k] for k in ("labels", "y", "Y") if k in arrays), None)
    if images is None or labels is None:
        raise ConfigError(
            f"data.path={str(path)!r}: needs arrays 'images' and 'labels' (has {', '.join(arrays) or 'none'})"
        )
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3, 4) and images.shape[1] not in (1, 3, 4):
        images = images.transpose(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[2] != images.shape[3]:
        raise ConfigError(f"data.path={str(path)!r}: images of shape {list(images.shape)} are not N x C x S x S")
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError(
            f"data.path={str(path)!r}: labels must be {len(images)} integers, got {labels.dtype} {list(labels.shape)}"
        )
    if labels.min() < 0:
        raise ConfigError(f"data.path={str(path)!r}: negative label {int(labels.min())}")
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    return (images / scale).astype(np.float32), labels.astype(np.int64)


def _existing(path: str | None, *, folder: bool) -> Path:
    p = Path(path or "").expanduser()
    if folder and not p.is_dir():
        raise ConfigError(f"data.path={path!r}: no such folder")
    if not folder and not p.is_file():
        raise ConfigError(f"data.path={path!r}: no such file")
    return p


def _fashion_mnist(path: str | None) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    folder = Path(path or FASHION_MNIST_DIR).expanduser()
    return read_idx_split(folder, "train"), read_idx_split(folder, "test")


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


def _split_indices(n: int, cfg: DataConfig, *, with_test: bool) -> tuple[np.ndarray, ...]:
    order = np.random.default_rng(cfg.seed).permutation(n)
    n_val = max(1, round(cfg.val_fraction * n))
    n_test = max(1, round(cfg.test_fraction * n)) if with_test else 0  # type: ignore[attr-defined]
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def _resize(images: torch.Tensor, resolution: int | None) -> torch.Tensor:
    if resolution is None or resolution == images.shape[-1]:
        return images
    antialias = resolution < images.shape[-1]
    return F.interpolate(images, size=resolution, mode="bilinear", align_corners=False, antialias=antialias)


def load_data(cfg: DataConfig) -> Splits:
    """Load, split by `cfg.seed`, resize, and normalise with the train split's channel stats."""
    if isinstance(cfg, FolderData):
        return _folder(cfg)
    official_test: tuple[np.ndarray, np.ndarray] | None = None
    if isinstance(cfg, Cifar100Data):
        (images, labels), official_test = _cifar100(_existing(cfg.path, folder=True), cfg.labels)
    elif cfg.name == "fashion-mnist":
        (images, labels), official_test = _fashion_mnist(cfg.path)
    elif cfg.name == "digits":
        images, labels = _digits()
    elif cfg.name == "synthetic":
        images, labels = _synthetic(cfg)
    elif cfg.name == "cifar10":
        (images, labels), official_test = _cifar10(_existing(cfg.path, folder=True))
    else:
        images, labels = _npz(_existing(cfg.path, folder=False))
    if cfg.limit is not None:
        images, labels = images[: cfg.limit], labels[: cfg.limit]
    if cfg.subset is not None:
        keep = balanced_subset(labels, cfg.subset, cfg.seed)
        images, labels = images[keep], labels[keep]
    if len(labels) < 10:
        raise ConfigError(f"data.name={cfg.name!r}: only {len(labels)} images, need at least 10")
    train_idx, val_idx, test_idx = _split_indices(len(labels), cfg, with_test=official_test is None)
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
    num_classes = int(max(int(ys.max()) for _, ys in parts.values())) + 1
    if isinstance(cfg, Cifar100Data):  # every class, even one a subset leaves out
        num_classes = 100 if cfg.labels == "fine" else 20
    train = splits["train"]
    return Splits(
        train=train,
        val=splits["val"],
        test=splits["test"],
        num_classes=num_classes,
        channels=train.images.shape[1],
        resolution=train.images.shape[-1],
        class_names=class_names(cfg, num_classes),
        mean=tuple(mean.flatten().tolist()),
        std=tuple(std.flatten().tolist()),
    )


def _folder(cfg: FolderData) -> Splits:
    """A class-per-folder tree, split as every other source is (limit, subset, seed; its val/
    folder, where there is one, is the official test split), read by search/data/folder.py."""
    if not cfg.path:
        raise ConfigError("data.path=None: data=folder needs data.path=<folder holding train/<class>/...>")
    root = Path(cfg.path).expanduser()
    tree = scan(root)
    files = tree.train[: cfg.limit] if cfg.limit is not None else tree.train
    if cfg.subset is not None:
        files = [files[i] for i in balanced_subset(np.array([label for _, label in files]), cfg.subset, cfg.seed)]
    train_idx, val_idx, test_idx = _split_indices(len(files), cfg, with_test=tree.val is None)
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


FASHION_MNIST_CLASSES = (
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
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _meta_names(cfg: DataConfig, candidates: tuple[str, ...], key: bytes) -> list[str]:
    """Label names from a CIFAR meta file under `data.path` (the first candidate that exists);
    [] when there is none or it is damaged: that costs the names, not the run."""
    root = Path(getattr(cfg, "path", None) or "").expanduser()
    meta = next((root / c for c in candidates if (root / c).is_file()), None)
    if meta is None:
        return []
    try:
        raw = _ArrayUnpickler(io.BytesIO(meta.read_bytes()), encoding="bytes").load()[key]
        return [n.decode() if isinstance(n, bytes) else str(n) for n in raw]
    except Exception:
        return []


def class_names(cfg: DataConfig, num_classes: int) -> tuple[str, ...]:
    """Names by label: the data set's own where it has them (CIFAR-10's batches.meta,
    CIFAR-100's meta, an .npz's `class_names` array), the published ones for Fashion-MNIST,
    else the label."""
    names: list[str] = []
    if cfg.name == "fashion-mnist":
        names = list(FASHION_MNIST_CLASSES)
    elif cfg.name == "cifar10":
        names = _meta_names(cfg, ("cifar-10-batches-py/batches.meta", "batches.meta"), b"label_names") or list(
            CIFAR10_CLASSES
        )
    elif isinstance(cfg, Cifar100Data):
        key = b"fine_label_names" if cfg.labels == "fine" else b"coarse_label_names"
        names = _meta_names(cfg, ("cifar-100-python/meta", "meta"), key)
    elif cfg.name == "npz":
        with np.load(Path(cfg.path or "").expanduser(), allow_pickle=False) as archive:
            if "class_names" in archive.files:
                names = [str(n) for n in archive["class_names"].tolist()]
    if len(names) != num_classes:
        names = [str(i) for i in range(num_classes)]
    return tuple(names)
