"""`python -m search.apps.compare`: architectures scaled to one multiply-add budget, trained alike.

The same app as `search.apps.ablate` with `experiment=compare` as its default (see conf/compare.yaml).
"""

from __future__ import annotations

from search.apps.ablate import main as _ablate_main

__all__ = ["main"]


def main() -> None:
    _ablate_main("compare")


if __name__ == "__main__":
    main()
