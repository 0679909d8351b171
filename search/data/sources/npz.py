"""Any `.npz` of images and labels; the test split is carved out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np

from search.config.schema import ConfigError, DataConfig
from search.data.source import Arrays, ArraySource
from search.data.sources._files import existing

__all__ = ["NpzData", "SOURCES"]


@dataclass
class NpzData(DataConfig):
    """An .npz of `images` and `labels` (`path`: the file); the test split is carved out."""

    name: str = "npz"
    path: Optional[str] = None
    path_hint: ClassVar[Optional[str]] = "file.npz"
    test_fraction: float = 0.2


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


def _read(cfg: DataConfig) -> Arrays:
    return (*_npz(existing(getattr(cfg, "path", None), folder=False)), None)


def _names(cfg: DataConfig) -> list[str]:
    with np.load(Path(getattr(cfg, "path", None) or "").expanduser(), allow_pickle=False) as archive:
        return [str(n) for n in archive["class_names"].tolist()] if "class_names" in archive.files else []


SOURCES = (ArraySource(config=NpzData, read=_read, names=_names),)
