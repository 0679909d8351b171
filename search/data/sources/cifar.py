"""CIFAR-10 and CIFAR-100 in their python format, from a local folder; the official test batch is
the test split. Label names from the data set's own meta file where it has one."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from search.config.schema import Cifar10Data, Cifar100Data, ConfigError, DataConfig
from search.data.source import Arrays, ArraySource
from search.data.sources._files import existing

__all__ = ["CIFAR10", "CIFAR100"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


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


def _read_cifar10(cfg: DataConfig) -> Arrays:
    train, test = _cifar10(existing(getattr(cfg, "path", None), folder=True))
    return (*train, test)


def _read_cifar100(cfg: DataConfig) -> Arrays:
    assert isinstance(cfg, Cifar100Data)
    train, test = _cifar100(existing(cfg.path, folder=True), cfg.labels)
    return (*train, test)


def _cifar10_names(cfg: DataConfig) -> list[str]:
    return _meta_names(cfg, ("cifar-10-batches-py/batches.meta", "batches.meta"), b"label_names") or list(
        CIFAR10_CLASSES
    )


def _cifar100_names(cfg: DataConfig) -> list[str]:
    assert isinstance(cfg, Cifar100Data)
    key = b"fine_label_names" if cfg.labels == "fine" else b"coarse_label_names"
    return _meta_names(cfg, ("cifar-100-python/meta", "meta"), key)


def _cifar100_classes(cfg: DataConfig) -> int:
    """Every class, even one a subset leaves out."""
    assert isinstance(cfg, Cifar100Data)
    return 100 if cfg.labels == "fine" else 20


CIFAR10 = ArraySource(config=Cifar10Data, read=_read_cifar10, names=_cifar10_names)
CIFAR100 = ArraySource(config=Cifar100Data, read=_read_cifar100, names=_cifar100_names, classes=_cifar100_classes)
