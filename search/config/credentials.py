"""Credentials never leave the process: storage URLs are masked wherever they are written (logs,
reports, W&B config, error messages, Hydra's saved config)."""

from __future__ import annotations

import re
from pathlib import Path

from space.io import atomic_path

__all__ = ["mask_credentials", "mask_file"]

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@\s]*)@")
_QUERY = re.compile(r"(?P<key>[?&;](?:password|passwd|pwd|secret|token)=)[^&;\s'\"]*", re.IGNORECASE)


def mask_credentials(text: str) -> str:
    """`postgresql://user:secret@host/db?password=x` -> `postgresql://user:***@host/db?password=***`."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _QUERY.sub(lambda m: f"{m['key']}***", text)


def mask_file(path: Path) -> None:
    """Rewrite a text file with its credentials masked (no-op when there are none)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return
    masked = mask_credentials(text)
    if masked == text:
        return
    try:  # a private temp name: parallel jobs mask the shared multirun.yaml at once
        with atomic_path(path) as tmp:
            tmp.write_text(masked)
    except OSError:
        pass
