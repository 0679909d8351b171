"""The accuracy-vs-MACs front of a budget sweep (`python -m search -m budget.macs=...`): each
budget's confirmed best beside the hand design projected onto the same budget, confirmed with
the same seeds. Under search.strategy=supernet the sweep trains one supernet (the first budget's,
reused by every budget inside its range), so the whole front costs one supernet training plus
each budget's top-k: a fixed-budget comparison at every budget at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from search.optimize.confirm import mean_and_spread
from search.optimize.results import confirmed_summary
from search.reports.plots import save_figure
from search.reports.supernet_search import SUPERNET_ATTR

__all__ = ["FRONT_COLUMNS", "draw_front", "front_values"]

FRONT_COLUMNS = (
    "budget_macs",
    "confirmed",
    "confirmed_sd",
    "hand_macs",
    "hand_confirmed",
    "hand_confirmed_sd",
    "supernet",
)


def front_values(study: optuna.Study) -> dict[str, Any]:
    """One study's point of the front: its budget, its confirmed best and the hand design's
    confirmed mean (and sd over seeds), and the supernet it searched with ("" where none)."""
    summary = confirmed_summary(study)
    row: dict[str, Any] = {k: "" for k in FRONT_COLUMNS}
    row["budget_macs"] = study.user_attrs.get("budget_macs", "")
    row["supernet"] = (study.user_attrs.get(SUPERNET_ATTR) or {}).get("supernet", "")
    if summary is None:
        return row
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for prefix, number in (("confirmed", summary["best"]), ("hand_confirmed", summary.get("hand"))):
        values = summary["values"].get(str(number)) if number is not None else None
        if values:
            row[prefix], row[f"{prefix}_sd"] = (round(v, 4) for v in mean_and_spread(values))
    if summary.get("hand") is not None and summary["hand"] in trials:
        row["hand_macs"] = trials[summary["hand"]].user_attrs.get("macs", "")
    return row


def draw_front(rows: list[dict[str, Any]], path: Path) -> str | None:
    """front.png: confirmed accuracy against MACs, the searched best and the hand design per
    budget, error bars one sd over the confirmation's seeds; None with fewer than two budgets."""
    points = sorted((r for r in rows if r["confirmed"] != ""), key=lambda r: r["macs"])
    if len({r["budget_macs"] for r in points}) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    xs = [r["macs"] / 1e6 for r in points]
    ax.errorbar(
        xs,
        [r["confirmed"] for r in points],
        yerr=[r["confirmed_sd"] or 0 for r in points],
        marker="o",
        capsize=3,
        label="searched best (confirmed)",
    )
    hand = [r for r in points if r["hand_confirmed"] != ""]
    ax.errorbar(
        [r["hand_macs"] / 1e6 for r in hand],
        [r["hand_confirmed"] for r in hand],
        yerr=[r["hand_confirmed_sd"] or 0 for r in hand],
        marker="s",
        capsize=3,
        linestyle="--",
        label="hand design projected onto the budget (confirmed)",
    )
    supernets = {r["supernet"] for r in points if r["supernet"]}
    source = f"one supernet ({next(iter(supernets))})" if len(supernets) == 1 else f"{len(points)} searches"
    ax.set_xlabel("inference MACs (millions)")
    ax.set_ylabel("validation accuracy at the confirmation fidelity")
    ax.set_title(f"accuracy vs MACs: {len(points)} budgets from {source}", fontsize="medium")
    ax.grid(alpha=0.3)
    return save_figure(fig, path, legend_below=True)
