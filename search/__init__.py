"""Budget-constrained architecture search over the Inception space (see `space`)."""

from __future__ import annotations

__all__: list[str] = []
