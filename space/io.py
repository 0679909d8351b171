"""Genotype files: YAML (`.yaml`, `.yml`) or JSON (`.json`), chosen by suffix.

Files hold `Genotype.to_dict()` exactly, so dump -> load returns an equal genotype with the same
key. YAML is read with `yaml.safe_load` only: a genotype file can never run code.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from space.genotype import Genotype

__all__ = ["GENOTYPE_SUFFIXES", "atomic_path", "dump", "load", "resolve"]

_YAML = {".yaml", ".yml"}
GENOTYPE_SUFFIXES: tuple[str, ...] = (".yaml", ".yml", ".json")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A private temporary path beside `path` (parents created), renamed over `path` when the
    block ends without error and removed otherwise: a file is written whole or not at all, and
    processes that write the same file at once (joined workers' reports) each write a whole one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _YAML:
        return "yaml"
    if suffix == ".json":
        return "json"
    raise ValueError(f"genotype file={str(path)!r}: unknown suffix {suffix!r} (use {', '.join(GENOTYPE_SUFFIXES)})")


def dump(genotype: Genotype, path: str | Path) -> Path:
    """Write `genotype` to `path` (parents created; written whole or not at all); returns the path."""
    path = Path(path)
    fmt = _format(path)
    data = genotype.to_dict()
    text = (
        yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
        if fmt == "yaml"
        else json.dumps(data, indent=2) + "\n"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def load(path: str | Path) -> Genotype:
    """Read a genotype file; any problem is a one-line ValueError naming the file and the cause."""
    path = Path(path)
    fmt = _format(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"genotype file={str(path)!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"genotype file={str(path)!r}: cannot be read ({err.__class__.__name__})") from None
    try:
        data = yaml.safe_load(text) if fmt == "yaml" else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        where = getattr(err, "problem_mark", None) or getattr(err, "lineno", None)
        line = f" at line {where.line + 1}" if hasattr(where, "line") else (f" at line {where}" if where else "")
        raise ValueError(f"genotype file={str(path)!r}: not valid {fmt.upper()}{line}") from None
    try:
        return Genotype.from_dict(data)
    except ValueError as err:
        raise ValueError(f"genotype file={str(path)!r}: {err}") from None


def resolve(spec: str, **overrides: Any) -> Genotype:
    """A preset name or a genotype file, with overrides: what every command accepts as a genotype."""
    from space.presets import PRESETS, preset, with_overrides

    if spec in PRESETS:
        return preset(spec, **overrides)
    if Path(spec).suffix.lower() in GENOTYPE_SUFFIXES:
        return with_overrides(load(Path(spec).expanduser()), overrides)
    raise ValueError(
        f"genotype={spec!r}: neither a preset ({', '.join(PRESETS)}) nor a {'/'.join(GENOTYPE_SUFFIXES)} file"
    )
