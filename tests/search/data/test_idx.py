"""The IDX reader (search/data/idx.py) and data=fashion-mnist: strict headers, official splits,
class-balanced subsets. The tests on the real files skip, with the line that says how to get
them, where the Debian package is not installed (./run.sh test installs it where it can)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from search.config.schema import ConfigError
from search.data.idx import FASHION_MNIST_DIR, FASHION_MNIST_HINT, idx_files, read_idx
from search.data.sources import data_config, load_data
from search.data.splits import balanced_subset

HAVE_FASHION_MNIST = Path(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz").is_file()
needs_fashion_mnist = pytest.mark.skipif(not HAVE_FASHION_MNIST, reason=f"no Fashion-MNIST: {FASHION_MNIST_HINT}")


def _idx(values: np.ndarray, *, magic: bytes | None = None) -> bytes:
    header = magic if magic is not None else bytes([0, 0, 8, values.ndim])
    return header + struct.pack(f">{values.ndim}I", *values.shape) + values.astype(np.uint8).tobytes()


def _folder(root: Path, n_train: int = 60, n_test: int = 20, *, gz: bool = True, sep: str = "-") -> Path:
    rng = np.random.default_rng(0)
    parts = {
        "train-images": rng.integers(0, 256, (n_train, 6, 6)),
        "train-labels": np.arange(n_train) % 10,
        "t10k-images": rng.integers(0, 256, (n_test, 6, 6)),
        "t10k-labels": np.arange(n_test) % 10,
    }
    for stem, values in parts.items():
        raw = _idx(values)
        name = f"{stem}{sep}idx{values.ndim}-ubyte"
        (root / (name + ".gz" if gz else name)).write_bytes(gzip.compress(raw) if gz else raw)
    return root


@pytest.mark.parametrize("gz,sep", [(True, "-"), (False, "-"), (False, ".")])
def test_idx_folder_official_splits(tmp_path: Path, gz: bool, sep: str) -> None:
    d = load_data(data_config("fashion-mnist", path=str(_folder(tmp_path, gz=gz, sep=sep)), val_fraction=0.2))
    assert (d.channels, d.resolution, d.num_classes) == (1, 6, 10)
    assert len(d.test) == 20 and len(d.val) == 12 and len(d.train) == 48  # val carved from the training files


def test_idx_header_is_checked(tmp_path: Path) -> None:
    images = np.zeros((4, 3, 3))
    bad = {
        "magic": (_idx(images, magic=b"\x00\x00\x08\x01"), "magic number 00000801, expected 00000803"),
        "type": (_idx(images, magic=b"\x00\x00\x0d\x03"), "magic number 00000d03"),
        "not idx": (b"PK\x03\x04" + bytes(40), "not an IDX file"),
        "truncated": (_idx(images)[:-2], "header says 4 x 3 x 3 values"),
        "too long": (_idx(images) + b"\x00", "header says 4 x 3 x 3 values"),
    }
    for name, (raw, message) in bad.items():
        path = tmp_path / f"{name}.idx"
        path.write_bytes(raw)
        with pytest.raises(ConfigError, match=message):
            read_idx(path, 3)
    gz = tmp_path / "broken.gz"
    gz.write_bytes(gzip.compress(_idx(images))[:-8])
    with pytest.raises(ConfigError, match="unreadable"):
        read_idx(gz, 3)


def test_idx_counts_must_agree(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(np.arange(19) % 10)))
    with pytest.raises(ConfigError, match="holds 20 images but t10k-labels-idx1-ubyte.gz 19 labels"):
        load_data(data_config("fashion-mnist", path=str(root)))


def test_missing_files_name_them_and_the_fix(tmp_path: Path) -> None:
    _folder(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ConfigError, match="no IDX file train-labels-idx1-ubyte.*apt-get install dataset-fashion-mnist"):
        idx_files(tmp_path)


def test_balanced_subset() -> None:
    labels = np.repeat(np.arange(10), [100] * 9 + [5])  # one rare class
    picked = balanced_subset(labels, 200, seed=0)
    counts = np.bincount(labels[picked], minlength=10)
    assert len(set(picked.tolist())) == 200 and counts[9] == 5  # the rare class gives all it has
    assert counts[:9].max() - counts[:9].min() <= 1
    assert not np.array_equal(picked, balanced_subset(labels, 200, seed=1))
    np.testing.assert_array_equal(picked, balanced_subset(labels, 200, seed=0))


@needs_fashion_mnist
def test_fashion_mnist_real_files() -> None:
    d = load_data(data_config("fashion-mnist", subset=1000, val_fraction=0.2))
    assert (d.channels, d.resolution, d.num_classes) == (1, 28, 10)
    assert len(d.test) == 10_000 and len(d.train) == 800 and len(d.val) == 200
    assert torch.bincount(d.test.labels).tolist() == [1000] * 10  # the official test set
    assert torch.bincount(torch.cat([d.train.labels, d.val.labels])).tolist() == [100] * 10  # balanced subset
