"""The benchmark's report, from its studies and retraining records only.

Each method has one retrained network per repeat (its search's named best), each trained with
the same seeds, so a method is compared with another pair by pair: repeat r's network of each,
seed s. summary.csv: one row per method (and the hand design): test accuracy over repeats x
seeds, paired differences with 95% Student-t intervals against the hand design and the baseline
(over the repeat x seed pairs, and over the repeats' means, which counts each search once), and
what its searches spent. runs.csv: every retraining run. report.md states the issue's goals for
the main job's method as measured. anytime.png: median best validation accuracy against
cumulative training seconds, inter-quartile band over repeats. edf.png: the empirical
distribution of validation accuracy of the random-search methods' networks, one curve per design
space (RegNet's comparison of design spaces). test_accuracy.png: each method's runs.
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
from search.optimize.results import confirmed_summary
from search.optimize.status import Status, counts, is_trained, spent_seconds
from search.reports.ablation import detectable_difference, paired_difference
from search.reports.supernet_search import SUPERNET_ATTR
from space.io import atomic_path

__all__ = ["anytime_curve", "edf_values", "median_curve", "reach_fraction", "write_benchmark_report"]

REACH_GOAL = 0.5  # the default's median anytime curve reaches the baseline's median final best by this share

COLUMNS = (
    "arm",
    "networks",
    "runs",
    "macs_min",
    "macs_max",
    "test_mean",
    "test_std",
    "vs_hand_mean",
    "vs_hand_ci_low",
    "vs_hand_ci_high",
    "vs_hand_mde",
    "vs_baseline_mean",
    "vs_baseline_ci_low",
    "vs_baseline_ci_high",
    "vs_baseline_mde",
    "vs_baseline_repeats_mean",
    "vs_baseline_repeats_ci_low",
    "vs_baseline_repeats_ci_high",
    "vs_baseline_repeats_mde",
    "search_seconds",  # everything a search spent: training, pre-screen, supernet, scoring, confirmation
    "search_train_seconds",
    "search_trained_trials",
    "search_untrained_draws",
    "prescreen_seconds",
    "sources",
)
RUN_COLUMNS = ("arm", "repeat", "seed", "key", "macs", "params", "val_accuracy", "test_accuracy", "source")


def _before_trials(study: optuna.Study) -> float:
    """Seconds a search spends before its first trained trial: the pre-screen's, and a supernet
    search's supernet training and candidate scoring."""
    supernet = study.user_attrs.get(SUPERNET_ATTR) or {}
    found = float(supernet.get("supernet_seconds", 0.0)) + float(supernet.get("candidates_wall_seconds", 0.0))
    return float(study.user_attrs.get("prescreen_seconds", 0.0)) + found


def anytime_curve(study: optuna.Study) -> list[tuple[float, float]]:
    """(cumulative training seconds, best validation accuracy so far) after each trained trial,
    in trial order; pre-screen seconds (and a supernet search's supernet and scoring seconds)
    are spent before the first."""
    spent = _before_trials(study)
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


def edf_values(cfg: BenchmarkConfig, studies: dict[str, list[optuna.Study]]) -> dict[str, list[float]]:
    """The validation accuracies of every network the random-search methods trained to the end,
    sorted, by method: a random sample of each method's design space at the search's fidelity."""
    return {
        method: sorted(
            float(t.value)  # type: ignore[arg-type]
            for s in studies.get(method, [])
            for t in s.get_trials(deepcopy=False)
            if is_trained(t) and t.user_attrs.get("status") == Status.COMPLETE
        )
        for method, m in method_configs(cfg.benchmark).items()
        if m.sampler == "random"
    }


def _edf_lines(cfg: BenchmarkConfig, edfs: dict[str, list[float]]) -> list[str]:
    """Quantiles of each design space's EDF, and how much of each lies above the first's median."""
    shares = {n: m.share for n, m in method_configs(cfg.benchmark).items()}
    edfs = {n: v for n, v in edfs.items() if v}
    if not edfs:
        return []
    first, reference = next(iter(edfs.items()))
    median = statistics.median(reference)
    lines = ["", "## Design spaces (random networks' validation accuracy, EDF)", ""]
    lines += ["| method | space | networks | 10% | 25% | median | 75% | 90% | above " + f"{first}'s median |"]
    lines += ["|---|---|---|---|---|---|---|---|---|"]
    for name, values in edfs.items():
        q = np.percentile(values, [10, 25, 50, 75, 90])
        above = sum(v > median for v in values) / len(values)
        lines.append(
            f"| {name} | {shares[name]} | {len(values)} | " + " | ".join(f"{x:.4f}" for x in q) + f" | {above:.0%} |"
        )
    return lines


def _search_costs(studies: list[optuna.Study]) -> dict[str, float]:
    """What a method's searches spent, summed over its repeats."""
    trials = [t for s in studies for t in s.get_trials(deepcopy=False)]
    prescreen = sum(float(s.user_attrs.get("prescreen_seconds", 0.0)) for s in studies)
    confirmation = sum(float((confirmed_summary(s) or {}).get("seconds", 0.0)) for s in studies)
    before = sum(_before_trials(s) for s in studies) - prescreen
    return {
        "search_seconds": sum(spent_seconds(s) for s in studies) + before + confirmation,
        "search_train_seconds": sum(spent_seconds(s) for s in studies) - prescreen,
        "search_trained_trials": sum(counts(t) for t in trials),
        "search_untrained_draws": sum(
            t.user_attrs.get("status") in (Status.INFEASIBLE, Status.DUPLICATE) for t in trials
        ),
        "prescreen_seconds": prescreen,
    }


Curve = list[tuple[float, float]]  # (cumulative training seconds, best validation accuracy so far)
Pairs = dict[tuple[int, int], float]  # (repeat, seed) -> test accuracy


def _test_values(records: list[dict[str, Any]]) -> dict[str, Pairs]:
    """Each arm's test accuracies by (repeat, seed); the hand design's repeat is -1."""
    values: dict[str, Pairs] = {}
    for r in records:
        if r.get("test_accuracy") is not None:
            repeat = -1 if r.get("repeat") is None else r["repeat"]
            values.setdefault(r["arm"], {})[repeat, r["seed"]] = r["test_accuracy"]
    return values


def _against_hand(method: Pairs, hand: Pairs) -> Pairs:
    """The hand design's run with seed s, paired with each repeat's run with seed s."""
    by_seed = {seed: v for (_, seed), v in hand.items()}
    return {(r, s): by_seed[s] for r, s in method if s in by_seed}


def _repeat_means(values: Pairs) -> dict[int, float]:
    repeats: dict[int, list[float]] = {}
    for (r, _), v in values.items():
        repeats.setdefault(r, []).append(v)
    return {r: statistics.fmean(vs) for r, vs in repeats.items()}


def _rows(
    cfg: BenchmarkConfig, studies: dict[str, list[optuna.Study]], records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    by_arm: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_arm.setdefault(r["arm"], []).append(r)
    test = _test_values(records)
    baseline = cfg.benchmark.baseline
    rows = []
    for arm, rs in by_arm.items():
        values = list(test.get(arm, {}).values())
        row: dict[str, Any] = {
            "arm": arm,
            "networks": len({r["key"] for r in rs}),
            "runs": len(values),
            "macs_min": min(r["macs"] for r in rs),
            "macs_max": max(r["macs"] for r in rs),
            "test_mean": statistics.mean(values) if values else "",
            "test_std": statistics.stdev(values) if len(values) > 1 else "",
            "sources": "; ".join(sorted({r["source"] for r in rs})),
        }
        mine = test.get(arm, {})
        compared: dict[str, tuple[dict[Any, float], dict[Any, float]]] = {}
        if arm != HAND_DESIGN and HAND_DESIGN in test:
            compared["vs_hand"] = mine, _against_hand(mine, test[HAND_DESIGN])
        if arm not in (baseline, HAND_DESIGN) and baseline in test:
            compared["vs_baseline"] = mine, test[baseline]
            compared["vs_baseline_repeats"] = _repeat_means(mine), _repeat_means(test[baseline])
        for prefix in ("vs_hand", "vs_baseline", "vs_baseline_repeats"):
            a, b = compared.get(prefix, ({}, {}))
            diff = paired_difference(a, b)
            row |= dict(zip((f"{prefix}_mean", f"{prefix}_ci_low", f"{prefix}_ci_high"), diff or ("", "", "")))
            mde = detectable_difference(a, b)
            row[f"{prefix}_mde"] = "" if mde is None else mde
        row |= _search_costs(studies.get(arm, []))
        rows.append(row)
    return rows


def _points(mean: Any, low: Any, high: Any) -> str:
    return "-" if mean == "" else f"{100 * mean:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"


def _diff(row: dict[str, Any], prefix: str) -> str:
    """The difference in points with its 95% interval and its minimum detectable difference."""
    shown = _points(row[f"{prefix}_mean"], row[f"{prefix}_ci_low"], row[f"{prefix}_ci_high"])
    mde = row.get(f"{prefix}_mde", "")
    return shown if mde == "" else f"{shown}, MDE {100 * mde:.2f}"


def _plots(
    cfg: BenchmarkConfig,
    curves: dict[str, list[list[tuple[float, float]]]],
    edfs: dict[str, list[float]],
    records: list[dict[str, Any]],
    directory: Path,
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = {"anytime.png": _anytime_plot, "edf.png": _edf_plot, "test_accuracy.png": _test_plot}
    drawn = []
    for name, draw in plots.items():
        fig, ax = plt.subplots(figsize=(9, 4.5) if name == "anytime.png" else (7.5, 4))
        if draw(ax, cfg, curves=curves, edfs=edfs, records=records):
            ax.grid(alpha=0.3)
            fig.tight_layout()
            fig.savefig(directory / name, dpi=120)
            drawn.append(name)
        plt.close(fig)
    return drawn


def _anytime_plot(ax: Any, cfg: BenchmarkConfig, *, curves: dict[str, list[Curve]], **_: Any) -> bool:
    methods = method_configs(cfg.benchmark)
    for method, cs in curves.items():
        xs, median, q25, q75 = median_curve(cs)
        if len(xs):
            own = methods[method].budget_seconds  # curves are keyed by the same method names
            label = f"{method} (median of {len(cs)}" + ("" if own is None else f", {own:g} training s each") + ")"
            line = ax.step(xs, median, where="post", label=label)[0]
            ax.fill_between(xs, q25, q75, step="post", alpha=0.2, color=line.get_color())
    ax.set_xlabel("cumulative training seconds of the search")
    ax.set_ylabel("best validation accuracy so far")
    per_search = f"{cfg.benchmark.n_trials} trained trials per search"
    if any(m.budget_seconds is not None for m in methods.values()):
        per_search += " (or the training seconds a method names)"
    # two lines: the longer title, with a method's seconds budget, is never clipped at the edge
    ax.set_title(f"{cfg.benchmark.name}: {cfg.budget.macs:,} MACs\n{per_search}", fontsize="medium")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")  # beside the curves, never over them
    return True


def _edf_plot(ax: Any, cfg: BenchmarkConfig, *, edfs: dict[str, list[float]], **_: Any) -> bool:
    """RegNet's comparison of design spaces: the EDF of random networks' accuracy in each."""
    shares = {n: m.share for n, m in method_configs(cfg.benchmark).items()}
    for name, values in edfs.items():
        if values:
            label = f"{name}: share={shares[name]} ({len(values)} networks)"
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post", label=label)
    ax.set_xlabel(f"validation accuracy after {cfg.train.epochs} epochs (search fidelity)")
    ax.set_ylabel("fraction of networks at or below")
    ax.set_title(f"design spaces at {cfg.budget.macs:,} MACs: networks drawn at random")
    ax.legend(loc="upper left", fontsize="small")
    return any(edfs.values())


def _test_plot(ax: Any, _cfg: BenchmarkConfig, *, records: list[dict[str, Any]], **_: Any) -> bool:
    arms = list(dict.fromkeys(r["arm"] for r in records))
    for i, arm in enumerate(arms):
        values = [r["test_accuracy"] for r in records if r["arm"] == arm and r.get("test_accuracy") is not None]
        ax.scatter([i] * len(values), values, alpha=0.6, s=18)
        if values:
            ax.hlines(statistics.fmean(values), i - 0.3, i + 0.3, color="black")
    ax.set_xticks(range(len(arms)), arms, rotation=20, ha="right")
    ax.set_ylabel("test accuracy (each run; bar: mean)")
    ax.set_title("each repeat's best retrained from scratch at matched MACs, tested once")
    return True


def write_benchmark_report(
    cfg: BenchmarkConfig, studies: dict[str, list[optuna.Study]], records: list[dict[str, Any]], directory: Path
) -> dict[str, Any]:
    b = cfg.benchmark
    rows = _rows(cfg, studies, records)
    _write_csv(rows, COLUMNS, directory / "summary.csv")
    runs = sorted(records, key=lambda r: (r["arm"], -1 if r.get("repeat") is None else r["repeat"], r["seed"]))
    _write_csv([{k: r.get(k) for k in RUN_COLUMNS} for r in runs], RUN_COLUMNS, directory / "runs.csv")
    curves = {m: [anytime_curve(s) for s in ss] for m, ss in studies.items()}
    edfs = edf_values(cfg, studies)
    plots = _plots(cfg, curves, edfs, records, directory)
    header = _task_lines(cfg)
    goal_lines, goals = _goal_lines(cfg, rows, curves)
    lines = [
        *header,
        *_arm_table(b, rows),
        "",
        "## Goals",
        "",
        f"Judged against {b.baseline} search for every method; the goals are stated for `{b.default}`, "
        "the main job's method.",
        "",
        *goal_lines,
        *_final_best_lines(curves),
        *_design_lines(cfg, studies, records),
        *_edf_lines(cfg, edfs),
    ]
    lines += ["", *[f"![{p}]({p})" for p in plots]]
    with atomic_path(directory / "report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[len(header) :]), flush=True)  # the console gets all but the task description
    return {"rows": rows, "goals": goals}


def _write_csv(rows: list[dict[str, Any]], columns: tuple[str, ...], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _task_lines(cfg: BenchmarkConfig) -> list[str]:
    """report.md's title and what was run: the task, the searches and methods, the retraining."""
    b = cfg.benchmark
    methods = ", ".join(
        f"{n} ({m.sampler}, space {m.share}, pruner {m.pruner}, warm start {m.warm_start}, prescreen {m.prescreen}"
        + ("" if m.budget_seconds is None else f", {m.budget_seconds:g} training seconds per search")
        + ("" if m.n_trials is None or m.strategy == "supernet" else f", at most {m.n_trials} networks")
        + (
            f", supernet search: {m.n_trials or b.n_trials} candidates scored through a supernet of its own, "
            f"the top {m.train_top_k or cfg.search.train_top_k} trained"
            if m.strategy == "supernet"
            else ""
        )
        + ")"
        for n, m in method_configs(b).items()
    )
    c = cfg.search.confirm
    confirm = (
        f"each search's best confirmed among its top {c.top_k} with seeds {list(c.seeds)}, "
        f"{c.epochs or cfg.train.epochs} epochs on {c.subset or cfg.data.subset or 'all'} images"
        if c.top_k
        else "each search's best by its search value (no confirmation)"
    )
    return [
        f"# Benchmark `{b.name}`",
        "",
        f"- task: data={cfg.data.name} (subset {cfg.data.subset or 'all'}, validation "
        f"{cfg.data.val_size or f'fraction {cfg.data.val_fraction}'}), "
        f"budget {cfg.budget.macs:,} MACs ({cfg.budget.mode}), base {cfg.space.base}",
        f"- searches: {b.repeats} per method x {b.n_trials} trained networks, {cfg.train.epochs} epochs each "
        f"({cfg.train.schedule} schedule); {confirm}; methods: {methods}",
        f"- retraining: every repeat's best and the hand design, seeds {b.retrain_seed}..{b.retrain_seed + b.seeds - 1}"
        f" x {b.retrain_epochs} epochs on {b.retrain_subset or 'all'} training images, width-matched to the budget, "
        "tested once on the official test set; differences are paired by (repeat, seed)",
        "",
    ]


def _arm_table(b: ProtocolConfig, rows: list[dict[str, Any]]) -> list[str]:
    """One markdown row per method: its retrained networks' test accuracy, paired differences, spend."""
    lines = [
        "| method | networks (runs) | MACs | test accuracy | vs hand design (points, 95% CI, MDE) | vs "
        f"{b.baseline}, repeat x seed pairs | vs {b.baseline}, over repeats | search seconds (all stages) | "
        "trained trials |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        test = "-" if r["test_mean"] == "" else f"{r['test_mean']:.4f} +- {r['test_std'] or 0:.4f}"
        spent = "-" if r["arm"] == HAND_DESIGN else f"{r['search_seconds']:.0f}"
        trained = "-" if r["arm"] == HAND_DESIGN else str(r["search_trained_trials"])
        name = f"{r['arm']} (default)" if r["arm"] == b.default else r["arm"]
        lines.append(
            f"| {name} | {r['networks']} ({r['runs']}) | {r['macs_min']:,}-{r['macs_max']:,} | {test} | "
            f"{_diff(r, 'vs_hand')} | {_diff(r, 'vs_baseline')} | {_diff(r, 'vs_baseline_repeats')} | "
            f"{spent} | {trained} |"
        )
    return lines


def _goal_lines(
    cfg: BenchmarkConfig, rows: list[dict[str, Any]], curves: dict[str, list[list[tuple[float, float]]]]
) -> tuple[list[str], dict[str, Any]]:
    """Each searched method judged on the two goals (its retrained best beats the baseline's, 95%
    interval above 0; its median anytime curve reaches the baseline's median final best within
    REACH_GOAL of the baseline's seconds): the report's lines and the measured values."""
    b = cfg.benchmark
    goals: dict[str, Any] = {}
    lines = []
    baseline_done = b.baseline in curves and all(curves[b.baseline])
    for r in rows:
        method = r["arm"]
        if method in (HAND_DESIGN, b.baseline) or r["vs_baseline_mean"] == "":
            continue
        beats = r["vs_baseline_ci_low"] > 0
        goals[f"{method}_vs_baseline"] = (r["vs_baseline_mean"], r["vs_baseline_ci_low"], r["vs_baseline_ci_high"])
        name = f"{method} (default)" if method == b.default else method
        goals[f"{method}_vs_baseline_mde"] = r["vs_baseline_mde"]
        goals[f"{method}_vs_baseline_repeats_mde"] = r["vs_baseline_repeats_mde"]
        line = (
            f"- {name}: retrained best beats {b.baseline}'s, 95% interval above 0: **{'met' if beats else 'missed'}** "
            f"({_diff(r, 'vs_baseline')} points over {r['runs']} repeat x seed pairs; "
            f"over repeats {_diff(r, 'vs_baseline_repeats')}; MDE: the smallest difference these pairs detect "
            "at 95% confidence with 80% power)"
        )
        base_row = next((row for row in rows if row["arm"] == b.baseline), None)
        if base_row is not None and base_row["search_seconds"]:
            ratio = r["search_seconds"] / base_row["search_seconds"]
            goals[f"{method}_seconds_ratio"] = ratio
            line += f"; it spent {ratio:.0%} of {b.baseline}'s seconds (every stage, confirmation included)"
        if baseline_done and curves.get(method):
            fraction = reach_fraction(curves[method], curves[b.baseline])
            goals[f"{method}_reach_fraction"] = fraction
            shown = "never" if fraction is None else f"at {fraction:.0%} of {b.baseline}'s seconds"
            met = fraction is not None and fraction <= REACH_GOAL
            line += (
                f"; median anytime curve reaches {b.baseline}'s median final best in <= {REACH_GOAL:.0%} of its "
                f"seconds: **{'met' if met else 'missed'}** ({shown})"
            )
        lines.append(line)
    return lines, goals


MDE_GOAL = 0.005  # the benchmark should see a difference of half a point between a method and its baseline
MDE_HOURS = 2.0  # ... within this many hours of the machine it ran on


def variance_components(method: Pairs, baseline: Pairs) -> tuple[float, float, int, int] | None:
    """The paired differences' variance split in two (one-way random effects): between searches
    (sigma_b^2: which network a search found) and between seeds of one network (sigma_w^2), with
    the repeats and seeds per repeat observed. None without two repeats of two seeds each."""
    by_repeat: dict[int, list[float]] = {}
    for key in sorted(set(method) & set(baseline)):
        by_repeat.setdefault(key[0], []).append(method[key] - baseline[key])
    full = [d for d in by_repeat.values() if len(d) >= 2]
    if len(full) < 2:
        return None
    seeds = min(len(d) for d in full)
    within = statistics.fmean(statistics.variance(d) for d in full)
    between = max(0.0, statistics.variance([statistics.fmean(d) for d in full]) - within / seeds)
    return between, within, len(full), seeds


def predicted_mde(between: float, within: float, repeats: int, seeds: int) -> float:
    """The over-repeats comparison's detectable difference with `repeats` searches per method,
    each best retrained with `seeds` seeds, from the two variance components."""
    from scipy.stats import t

    df = repeats - 1
    return float((t.ppf(0.975, df) + t.ppf(0.80, df)) * math.sqrt((between + within / seeds) / repeats))


def _design_lines(
    cfg: BenchmarkConfig, studies: dict[str, list[optuna.Study]], records: list[dict[str, Any]]
) -> list[str]:
    """For each method against the baseline: what a repeat and a seed cost and buy, and the
    cheapest (repeats, seeds) whose predicted MDE over repeats is <= MDE_GOAL."""
    b = cfg.benchmark
    test = _test_values(records)
    if b.baseline not in test:
        return []
    runs = [float(r["train_seconds"]) for r in records if r.get("train_seconds")]
    per_run = statistics.fmean(runs) if runs else 0.0
    lines = []
    for method, values in test.items():
        found = variance_components(values, test[b.baseline]) if method not in (b.baseline, HAND_DESIGN) else None
        if found is None or not studies.get(method) or not studies.get(b.baseline):
            continue
        between, within, repeats, seeds = found
        search = sum(_search_costs(studies[m])["search_seconds"] / len(studies[m]) for m in (method, b.baseline))
        designs = [  # (wall seconds, repeats, seeds, predicted MDE); the hand design's runs too
            ((r * (search + 2 * s * per_run) + s * per_run) / b.jobs, r, s, predicted_mde(between, within, r, s))
            for r in range(2, 8 * repeats + 1)
            for s in range(1, 17)
        ]
        good = [d for d in designs if d[3] <= MDE_GOAL]
        inside = min((d for d in designs if d[0] <= MDE_HOURS * 3600), key=lambda d: d[3], default=None)
        lines.append(
            f"- {method} vs {b.baseline}: sd between searches {100 * math.sqrt(between):.2f} points, between seeds of "
            f"one network {100 * math.sqrt(within):.2f} (from {repeats} repeats x {seeds} seeds); a repeat costs "
            f"{search:.0f} s of searching (both methods), a seed {per_run:.0f} s per network. "
            + (
                f"Cheapest design with a predicted MDE <= {100 * MDE_GOAL:.1f} points over repeats: {min(good)[1]} "
                f"repeats x {min(good)[2]} seeds, {min(good)[0] / 3600:.1f} h on {b.jobs} jobs"
                if good
                else f"no design up to {8 * repeats} repeats x 16 seeds reaches {100 * MDE_GOAL:.1f} points"
            )
            + (
                f"; the smallest MDE within {MDE_HOURS:g} h: {100 * inside[3]:.2f} points ({inside[1]} x {inside[2]})"
                if inside is not None
                else ""
            )
        )
    return ["", "## How many repeats and seeds?", "", *lines] if lines else []


def _final_best_lines(curves: dict[str, list[list[tuple[float, float]]]]) -> list[str]:
    lines = []
    for method, cs in curves.items():
        finals = [c[-1][1] for c in cs if c]
        if finals:
            lines.append(
                f"- {method}: final best validation accuracy per repeat {', '.join(f'{v:.4f}' for v in finals)}"
            )
    return lines
