"""report.md's supernet section (search.strategy=supernet): every network trained on its own
ranked three ways, by supernet score, by its stand-alone search value and confirmed at the
higher fidelity, side by side; and the seconds each stage took, so that a reader sees both what
the supernet's ranking was worth and what it cost."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial

from search.optimize.confirm import mean_and_spread
from search.optimize.results import confirmed_summary
from search.optimize.status import Status, hand_design, status

__all__ = ["SUPERNET_ATTR", "candidates_name", "supernet_lines"]

# The study attribute holding the supernet search's stages (search/experiments/supernet_search.py).
SUPERNET_ATTR = "supernet_search"


def candidates_name(name: str) -> str:
    """The study of a supernet search's scored candidates, beside `name` in its storage."""
    return f"{name}-candidates"


def _ranks(values: dict[int, float]) -> dict[int, int]:
    order = sorted(values, key=lambda number: (-values[number], number))
    return {number: i + 1 for i, number in enumerate(order)}


def _trained(trials: list[FrozenTrial]) -> dict[int, FrozenTrial]:
    """Each queued candidate's trial (the one that completed, else the newest of its retries)."""
    found: dict[int, FrozenTrial] = {}
    for t in sorted(trials, key=lambda t: t.number):
        candidate = t.user_attrs.get("candidate")
        if candidate is not None and (candidate not in found or status(found[candidate]) != Status.COMPLETE):
            found[candidate] = t
    return found


def supernet_lines(study: optuna.Study) -> list[str]:
    info: dict[str, Any] | None = study.user_attrs.get(SUPERNET_ATTR)
    if info is None:
        return []
    trials = study.get_trials(deepcopy=False)
    by_candidate = _trained(trials)
    hand = hand_design(trials, complete=True)
    summary = confirmed_summary(study) or {"values": {}, "seconds": 0.0}
    confirmed = {n: mean_and_spread(v) for n, v in summary["values"].items() if v}
    scores = {c: float(t.user_attrs["supernet_score"]) for c, t in by_candidate.items()}
    alone = {c: float(t.value) for c, t in by_candidate.items() if status(t) == Status.COMPLETE}  # type: ignore[arg-type]
    kept = {c: confirmed[str(t.number)][0] for c, t in by_candidate.items() if str(t.number) in confirmed}
    score_rank, alone_rank, kept_rank = _ranks(scores), _ranks(alone), _ranks(kept)
    how = "found trained (no training in this study)" if info["supernet_cached"] else "trained by this study"
    trained_seconds = sum(float(t.user_attrs.get("train_seconds", 0.0)) for t in by_candidate.values())
    lines = [
        "",
        "## Supernet search",
        "",
        f"- supernet `{info['supernet']}` ({info['supernet_dir']}): "
        f"{info['supernet_seconds']:.0f} s of training, {how}",
        f"- candidates: {info['scored']} scored through it in {info['score_seconds']:.0f} s of scoring "
        f"({info['score_seconds'] / max(info['scored'], 1):.2f} s each; {info['candidates_wall_seconds']:.0f} s wall "
        f"with the sampler), study `{info['candidates_study']}` (candidates/trials.csv)",
        f"- stand-alone: the top {len(info['queued'])} by score trained at the search's fidelity in "
        f"{trained_seconds:.0f} s; confirmation: {summary['seconds']:.0f} s",
        "",
        "| candidate | trial | key | MMACs | supernet score (rank) | stand-alone (rank) | confirmed (rank) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in sorted(by_candidate, key=lambda c: score_rank[c]):
        t = by_candidate[c]
        got = confirmed.get(str(t.number))
        lines.append(
            f"| #{c} | #{t.number} | `{t.user_attrs.get('key', '')}` | {t.user_attrs.get('macs', 0) / 1e6:.2f} | "
            f"{scores[c]:.4f} ({score_rank[c]}) | "
            + (f"{alone[c]:.4f} ({alone_rank[c]})" if c in alone else str(status(t)))
            + " | "
            + (f"{got[0]:.4f} ± {got[1]:.4f} ({kept_rank[c]})" if got else "-")
            + " |"
        )
    if hand is not None:
        got = confirmed.get(str(hand.number))
        lines.append(
            f"| hand design | #{hand.number} | `{hand.user_attrs.get('key', '')}` | "
            f"{hand.user_attrs.get('macs', 0) / 1e6:.2f} | not scored | {hand.value:.4f} | "
            + (f"{got[0]:.4f} ± {got[1]:.4f}" if got else "-")
            + " |"
        )
    return [*lines, ""]
