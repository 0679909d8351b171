"""Paths a source reads, checked before anything is read."""

from __future__ import annotations

from pathlib import Path

from search.config.schema import ConfigError

__all__ = ["existing"]


def existing(path: str | None, *, folder: bool) -> Path:
    p = Path(path or "").expanduser()
    if folder and not p.is_dir():
        raise ConfigError(f"data.path={path!r}: no such folder")
    if not folder and not p.is_file():
        raise ConfigError(f"data.path={path!r}: no such file")
    return p
