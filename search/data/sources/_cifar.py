"""What CIFAR-10 and CIFAR-100 share: python-format batches, read without running code, and the
label names of their meta files."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from search.config.schema import DataConfig

__all__ = ["meta_names", "unpickle"]


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


def unpickle(path: Path) -> Any:
    """A CIFAR python file's dict; any corruption raises (the caller names the file)."""
    return _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()


def meta_names(cfg: DataConfig, candidates: tuple[str, ...], key: bytes) -> list[str]:
    """Label names from a CIFAR meta file under `data.path` (the first candidate that exists);
    [] when there is none or it is damaged: that costs the names, not the run."""
    root = Path(getattr(cfg, "path", None) or "").expanduser()
    meta = next((root / c for c in candidates if (root / c).is_file()), None)
    if meta is None:
        return []
    try:
        raw = unpickle(meta)[key]
        return [n.decode() if isinstance(n, bytes) else str(n) for n in raw]
    except Exception:
        return []
