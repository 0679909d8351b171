"""The benchmark's report, from its studies and retraining records only.

summary.csv: one row per arm (the hand design and each method's best): cost, hyperparameters,
test accuracy mean +- std over seeds, paired differences with 95% CIs against the hand design
and against the baseline method, and what the method's searches spent. report.md states the
issue's two goals as measured. anytime.png: median best validation accuracy against cumulative
training seconds, inter-quartile band over repeats. test_accuracy.png: each arm's seeds.
"""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from search.config.benchmark import HAND_DESIGN, BenchmarkConfig, ProtocolConfig, method_configs
from search.config.params import as_overrides
from search.optimize.status import Status, counts, is_trained
from search.reports.ablation import paired_difference
from space.io import atomic_path

__all__ = ["anytime_curve", "median_curve", "reach_fraction", "write_benchmark_report"]

COLUMNS = (
    "arm",
    "key",
    "macs",
    "params",
    "hyperparameters",
    "seeds",
    "test_mean",
    "test_std",
    "vs_hand_mean",
    "vs_hand_ci_low",
    "vs_hand_ci_high",
    "vs_baseline_mean",
    "vs_baseline_ci_low",
    "vs_baseline_ci_high",
    "search_train_seconds",
    "search_trained_trials",
    "search_untrained_draws",
    "prescreen_seconds",
    "source",
)


def anytime_curve(study: optuna.Study) -> list[tuple[float, float]]:
    """(cumulative training seconds, best validation accuracy so far) after each trained trial,
    in trial order; pre-screen seconds are spent before the first."""
    spent = float(study.user_attrs.get("prescreen_seconds", 0.0))
    best = -math.inf
    curve = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if not counts(t):
            continue
        spent += float(t.user_attrs.get("train_seconds", 0.0))
        if is_trained(t):
            best = max(best, float(t.value))  # type: ignore[arg-type]
        if best > -math.inf:
            curve.append((spent, best))
    return curve


def _value_at(curve: list[tuple[float, float]], x: float) -> float:
    below = [y for cx, y in curve if cx <= x]
    return below[-1] if below else -math.inf  # nothing trained yet: below every accuracy


def median_curve(curves: list[list[tuple[float, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x grid and the median, 25th and 75th percentile over the repeats of their best-so-far
    there. A repeat that has trained nothing yet sits below every accuracy, so the median never
    falls; points where the median is still undefined are left out, quartiles there are nan."""
    xs = np.array(sorted({x for c in curves for x, _ in c}))
    if not len(xs):
        return xs, xs, xs, xs
    ys = np.array([[_value_at(c, x) for c in curves] for x in xs])
    with np.errstate(invalid="ignore"):
        median = np.median(ys, axis=1)
        q25, q75 = (
            np.nan_to_num(np.percentile(ys, q, axis=1, method="lower" if q < 50 else "higher"), neginf=np.nan)
            for q in (25, 75)
        )
    ok = np.isfinite(median)
    return xs[ok], median[ok], q25[ok], q75[ok]


def reach_fraction(method: list[list[tuple[float, float]]], baseline: list[list[tuple[float, float]]]) -> float | None:
    """The first x where `method`'s median curve reaches the baseline's median final best, as a
    fraction of the baseline's median total seconds; None if it never does."""
    target = statistics.median(c[-1][1] for c in baseline if c)
    total = statistics.median(c[-1][0] for c in baseline if c)
    xs, median, _, _ = median_curve(method)
    reached = [x for x, y in zip(xs, median) if y >= target]
    return reached[0] / total if reached and total > 0 else None


def _search_costs(studies: list[optuna.Study]) -> dict[str, float]:
    trials = [t for s in studies for t in s.get_trials(deepcopy=False)]
    return {
        "search_train_seconds": sum(float(t.user_attrs.get("train_seconds", 0.0)) for t in trials if counts(t)),
        "search_trained_trials": sum(counts(t) for t in trials),
        "search_untrained_draws": sum(
            t.user_attrs.get("status") in (Status.INFEASIBLE, Status.DUPLICATE) for t in trials
        ),
        "prescreen_seconds": sum(float(s.user_attrs.get("prescreen_seconds", 0.0)) for s in studies),
    }


def _rows(
    cfg: BenchmarkConfig, studies: dict[str, list[optuna.Study]], records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    by_arm: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_arm.setdefault(r["arm"], []).append(r)
    test = {
        a: {r["seed"]: r["test_accuracy"] for r in rs if r.get("test_accuracy") is not None} for a, rs in by_arm.items()
    }
    rows = []
    for arm, rs in by_arm.items():
        values = list(test[arm].values())
        row: dict[str, Any] = {k: rs[0][k] for k in ("key", "macs", "params", "source")}
        row["hyperparameters"] = as_overrides(rs[0]["hyperparameters"])
        row |= {
            "arm": arm,
            "seeds": len(values),
            "test_mean": statistics.mean(values) if values else "",
            "test_std": statistics.stdev(values) if len(values) > 1 else "",
        }
        for prefix, other in (("vs_hand", HAND_DESIGN), ("vs_baseline", cfg.benchmark.baseline)):
            diff = paired_difference(test[arm], test[other]) if arm != other and other in test else None
            row |= dict(zip((f"{prefix}_mean", f"{prefix}_ci_low", f"{prefix}_ci_high"), diff or ("", "", "")))
        row |= _search_costs(studies.get(arm, []))
        rows.append(row)
    return rows


def _fmt(value: Any) -> str:
    if value == "" or value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.4f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _points(mean: Any, low: Any, high: Any) -> str:
    return "-" if mean == "" else f"{100 * mean:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"


def _plots(
    cfg: BenchmarkConfig,
    curves: dict[str, list[list[tuple[float, float]]]],
    rows: list[dict[str, Any]],
    directory: Path,
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for method, cs in curves.items():
        xs, median, q25, q75 = median_curve(cs)
        if len(xs):
            line = ax.step(xs, median, where="post", label=f"{method} (median of {len(cs)})")[0]
            ax.fill_between(xs, q25, q75, step="post", alpha=0.2, color=line.get_color())
    hand = next((r for r in rows if r["arm"] == HAND_DESIGN), None)
    ax.set_xlabel("cumulative training seconds of the search")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title(f"{cfg.benchmark.name}: {cfg.budget.macs:,} MACs, {cfg.benchmark.n_trials} trained trials per search")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")  # beside the curves, never over them
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(directory / "anytime.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    names = [r["arm"] for r in rows if r["test_mean"] != ""]
    ax.errorbar(
        range(len(names)),
        [r["test_mean"] for r in rows if r["test_mean"] != ""],
        yerr=[r["test_std"] or 0 for r in rows if r["test_mean"] != ""],
        fmt="o",
        capsize=4,
    )
    if hand is not None and hand["test_mean"] != "":
        ax.axhline(hand["test_mean"], color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("test accuracy (mean +- std over seeds)")
    ax.set_title("retrained from scratch at matched MACs, tested once")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(directory / "test_accuracy.png", dpi=120)
    plt.close(fig)
    return ["anytime.png", "test_accuracy.png"]


def write_benchmark_report(
    cfg: BenchmarkConfig, studies: dict[str, list[optuna.Study]], records: list[dict[str, Any]], directory: Path
) -> dict[str, Any]:
    b = cfg.benchmark
    rows = _rows(cfg, studies, records)
    _write_summary_csv(rows, directory / "summary.csv")
    curves = {m: [anytime_curve(s) for s in ss] for m, ss in studies.items()}
    plots = _plots(cfg, curves, rows, directory)
    header = _task_lines(cfg)
    goal_lines, goals = _goal_lines(b, rows, curves)
    lines = [
        *header,
        *_arm_table(b, rows),
        "",
        "## Goals",
        "",
        f"Judged for every method against the hand design and {b.baseline} search "
        "(`tpe` is the shipped default: TPE with the median pruner).",
        "",
        *goal_lines,
        *_final_best_lines(curves),
    ]
    lines += ["", *[f"![{p}]({p})" for p in plots]]
    with atomic_path(directory / "report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[len(header) :]), flush=True)  # the console gets all but the task description
    return {"rows": rows, "goals": goals}


def _write_summary_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _task_lines(cfg: BenchmarkConfig) -> list[str]:
    """report.md's title and what was run: the task, the searches and methods, the retraining."""
    b = cfg.benchmark
    methods = ", ".join(
        f"{n} ({m.sampler}, pruner {m.pruner}, warm start {m.warm_start}, prescreen {m.prescreen})"
        for n, m in method_configs(b).items()
    )
    return [
        f"# Benchmark `{b.name}`",
        "",
        f"- task: data={cfg.data.name} (subset {cfg.data.subset or 'all'}, val fraction {cfg.data.val_fraction}), "
        f"budget {cfg.budget.macs:,} MACs ({cfg.budget.mode}), base {cfg.space.base}",
        f"- searches: {b.repeats} per method x {b.n_trials} trained networks, {cfg.train.epochs} epochs each; "
        f"methods: {methods}",
        f"- retraining: {b.seeds} seeds x {b.retrain_epochs} epochs on {b.retrain_subset or 'all'} training images, "
        "each arm width-matched to the budget, tested once on the official test set",
        "",
    ]


def _arm_table(b: ProtocolConfig, rows: list[dict[str, Any]]) -> list[str]:
    """One markdown row per arm: cost, settings, test accuracy, paired differences, search spend."""
    lines = [
        "| arm | MACs | params | searched settings | test accuracy | vs hand design (points, 95% CI) | vs "
        f"{b.baseline} (points, 95% CI) | search seconds | trained trials |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        test = "-" if r["test_mean"] == "" else f"{r['test_mean']:.4f} +- {r['test_std'] or 0:.4f} ({r['seeds']})"
        spent = "-" if r["arm"] == HAND_DESIGN else f"{r['search_train_seconds'] + r['prescreen_seconds']:.0f}"
        trained = "-" if r["arm"] == HAND_DESIGN else str(r["search_trained_trials"])
        lines.append(
            f"| {r['arm']} | {r['macs']:,} | {r['params']:,} | {r['hyperparameters'] or '-'} | "
            f"{test} | "
            f"{_points(r['vs_hand_mean'], r['vs_hand_ci_low'], r['vs_hand_ci_high'])} | "
            f"{_points(r['vs_baseline_mean'], r['vs_baseline_ci_low'], r['vs_baseline_ci_high'])} | "
            f"{spent} | {trained} |"
        )
    return lines


def _goal_lines(
    b: ProtocolConfig, rows: list[dict[str, Any]], curves: dict[str, list[list[tuple[float, float]]]]
) -> tuple[list[str], dict[str, Any]]:
    """Each searched method judged on the two goals (beat the hand design; reach the baseline's
    final best in <= 60% of its seconds): the report's lines and the measured values."""
    goals: dict[str, Any] = {}
    lines = []
    baseline_done = b.baseline in curves and all(curves[b.baseline])
    for r in rows:
        method = r["arm"]
        if method in (HAND_DESIGN, b.baseline) or r["vs_hand_mean"] == "":
            continue
        beats = r["vs_hand_mean"] >= 0.01 and r["vs_hand_ci_low"] > 0
        goals[f"{method}_vs_hand"] = (r["vs_hand_mean"], r["vs_hand_ci_low"], r["vs_hand_ci_high"])
        line = (
            f"- {method}: best beats the hand design by >= 1.0 point, CI above 0: **{'met' if beats else 'missed'}** "
            f"({_points(*goals[f'{method}_vs_hand'])} points over {r['seeds']} seeds)"
        )
        if baseline_done and curves.get(method):
            fraction = reach_fraction(curves[method], curves[b.baseline])
            goals[f"{method}_reach_fraction"] = fraction
            shown = "never" if fraction is None else f"at {fraction:.0%} of {b.baseline}'s seconds"
            met = fraction is not None and fraction <= 0.6
            line += (
                f"; median anytime curve reaches {b.baseline}'s median final best in <= 60% of its seconds: "
                f"**{'met' if met else 'missed'}** ({shown})"
            )
        lines.append(line)
    return lines, goals


def _final_best_lines(curves: dict[str, list[list[tuple[float, float]]]]) -> list[str]:
    lines = []
    for method, cs in curves.items():
        finals = [c[-1][1] for c in cs if c]
        if finals:
            lines.append(
                f"- {method}: final best validation accuracy per repeat {', '.join(f'{v:.4f}' for v in finals)}"
            )
    return lines
