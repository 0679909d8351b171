"""What every report's figures share: how a finished figure is written to disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from space.io import atomic_path

__all__ = ["save_figure"]


def save_figure(fig: Any, path: Path, *, legend_below: bool = False) -> str:
    """Write `fig` as a PNG at `path` atomically, close it, and return the file's name.

    `legend_below` first puts a legend under each axes that labels anything (so it never hides
    a point), lays the figure out and crops the PNG to its content, the legend included.
    """
    import matplotlib.pyplot as plt  # after the caller has chosen the backend (matplotlib.use)

    if legend_below:
        _legends_below(fig)
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight" if legend_below else None)
    plt.close(fig)
    return path.name


def _legends_below(fig: Any) -> None:
    """A legend below each axes that has labelled artists: below the axes it never hides a point."""
    for ax in fig.axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8, frameon=False)
