"""The main job. Until the search lands it prints the cost table of the canonical preset."""

from __future__ import annotations

import sys

from space.cost.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["googlenet", "--stem", "separable", *sys.argv[1:]]))
