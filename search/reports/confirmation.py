"""report.md's confirmation section: the search's top-k ranked twice, by its search value and at
the confirmation fidelity (search/optimize/confirm.py), and the best's lead over the hand design
with the seeds' spread, since one run's difference is within the objective's noise."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.optimize.confirm import mean_and_spread
from search.optimize.results import confirmed_summary

__all__ = ["confirmation_lines", "lead_over_hand_design"]


def _points(values: list[float]) -> str:
    mean, spread = mean_and_spread(values)
    return f"{mean:.4f} ± {spread:.4f}" if len(values) > 1 else f"{mean:.4f}"


def confirmation_lines(study: optuna.Study) -> list[str]:
    """The two rankings side by side, each network's search and confirmed value, and the cost."""
    summary = confirmed_summary(study)
    if summary is None:
        return []
    trials = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    values: dict[str, list[float]] = summary["values"]
    confirmed_rank = sorted(
        (number for number in summary["trials"] if values.get(str(number))),
        key=lambda number: (-mean_and_spread(values[str(number)])[0], number),
    )
    f = summary["fidelity"]
    lines = [
        "",
        "## Confirmation",
        "",
        f"The search's top {summary['top_k']} retrained at a higher fidelity: {f['epochs']} epochs, "
        f"{f['subset'] if f['subset'] is not None else 'all'} training images, seeds {f['seeds']}; "
        f"{summary['seconds']:.0f} s of training in all. The best is named by the confirmed mean.",
        "",
        "| search rank | confirmed rank | trial | key | search value (one run) | confirmed (mean ± sd over seeds) |",
        "|---|---|---|---|---|---|",
    ]
    numbers = list(summary["trials"])
    if summary.get("hand") is not None and summary["hand"] not in numbers:
        numbers.append(summary["hand"])
    for i, number in enumerate(numbers):
        t = trials[number]
        search_rank = str(i + 1) if number in summary["trials"] else "hand design"
        rank = str(confirmed_rank.index(number) + 1) if number in confirmed_rank else "-"
        got = values.get(str(number))
        lines.append(
            f"| {search_rank} | {rank} | #{number}{' (hand design)' if number == summary.get('hand') else ''} | "
            f"`{t.user_attrs['key']}` | {t.value:.4f} | {_points(got) if got else 'failed'} |"
        )
    return [*lines, ""]


def lead_over_hand_design(study: optuna.Study, best: FrozenTrial | None) -> str | None:
    """The best's lead over the hand design at the confirmation fidelity, with the per-seed
    differences (same seeds for both); None where the study has no confirmation of both."""
    summary: dict[str, Any] | None = confirmed_summary(study)
    if summary is None or best is None or summary.get("hand") is None:
        return None
    best_values = summary["values"].get(str(best.number)) or []
    hand_values = summary["values"].get(str(summary["hand"])) or []
    if not best_values or not hand_values:
        return None
    if best.number == summary["hand"]:
        return "the confirmed best is the hand design itself"
    differences = [100 * (b - h) for b, h in zip(best_values, hand_values)]
    mean, spread = mean_and_spread(differences)
    per_seed = ", ".join(f"{d:+.2f}" for d in differences)
    return (
        f"the confirmed best is {mean:+.2f} points above it at the confirmation fidelity "
        f"(mean over {len(differences)} seeds; per seed {per_seed}; sd {spread:.2f})"
    )
