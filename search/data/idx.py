"""MNIST-family IDX files (Fashion-MNIST, MNIST, KMNIST): the four files of the official split,
gzipped or not, read with a strict header check.

IDX is big-endian: two zero bytes, a type byte (0x08: unsigned bytes, the only type these data
sets use), the number of dimensions, one uint32 per dimension, then the values. A truncated
download, a swapped file or a label file from another data set fails here with one line naming
the file, never later as a shape error or a silently wrong label.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from search.config.schema import ConfigError

__all__ = ["FASHION_MNIST_DIR", "FASHION_MNIST_HINT", "idx_files", "read_idx", "read_idx_split"]

# Where Debian's `dataset-fashion-mnist` package puts the files: the default `data.path`.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_HINT = (
    f"install them with `apt-get install dataset-fashion-mnist` (files land in {FASHION_MNIST_DIR}) "
    "or give data.path=<folder with train-images-idx3-ubyte[.gz] and its three siblings>"
)

_UNSIGNED_BYTE = 0x08
_STEMS = {
    "train_images": ("train-images", 3),
    "train_labels": ("train-labels", 1),
    "test_images": ("t10k-images", 3),
    "test_labels": ("t10k-labels", 1),
}


def _find(folder: Path, stem: str, ndim: int) -> Path | None:
    """`train-images-idx3-ubyte`, with `-` or `.` before `idx` (both spellings circulate), `.gz` or not."""
    for sep in ("-", "."):
        for suffix in (".gz", ""):
            path = folder / f"{stem}{sep}idx{ndim}-ubyte{suffix}"
            if path.is_file():
                return path
    return None


def idx_files(folder: Path) -> dict[str, Path]:
    """The four files of an MNIST-family folder; a ConfigError names the missing ones."""
    found = {key: _find(folder, stem, ndim) for key, (stem, ndim) in _STEMS.items()}
    missing = [f"{_STEMS[key][0]}-idx{_STEMS[key][1]}-ubyte[.gz]" for key, path in found.items() if path is None]
    if missing:
        raise ConfigError(f"data.path={str(folder)!r}: no IDX file {', '.join(missing)}; {FASHION_MNIST_HINT}")
    return found  # type: ignore[return-value]


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The array in one IDX file, after checking magic number, dimensions and length."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ConfigError(f"data.path={str(path)!r}: unreadable ({err.__class__.__name__}: {err})") from None
    where = f"data.path={str(path)!r}"
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ConfigError(f"{where}: not an IDX file (magic number {raw[:4].hex() or 'missing'})")
    if raw[2] != _UNSIGNED_BYTE or raw[3] != ndim:
        want = f"0000{_UNSIGNED_BYTE:02x}{ndim:02x}"
        raise ConfigError(
            f"{where}: magic number {raw[:4].hex()}, expected {want} (unsigned bytes, {ndim} dimension(s))"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ConfigError(f"{where}: truncated header ({len(raw)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise ConfigError(
            f"{where}: header says {' x '.join(map(str, dims))} values ({expected} bytes) "
            f"but the file has {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_idx_split(folder: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N x 1 x H x W, float32 in [0, 1]) and labels (N, int64) of `part` ("train" or
    "test"), with image and label counts checked against each other."""
    files = idx_files(folder)
    images = read_idx(files[f"{part}_images"], 3)
    labels = read_idx(files[f"{part}_labels"], 1)
    if len(images) != len(labels):
        raise ConfigError(
            f"data.path={str(folder)!r}: {files[f'{part}_images'].name} holds {len(images)} images "
            f"but {files[f'{part}_labels'].name} {len(labels)} labels"
        )
    if images.shape[1] != images.shape[2]:
        raise ConfigError(f"data.path={str(folder)!r}: {images.shape[1]}x{images.shape[2]} images are not square")
    return (images[:, None] / 255.0).astype(np.float32), labels.astype(np.int64)
