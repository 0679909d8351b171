"""Results of a study, written from its storage alone: trials.csv, best.yaml, report.md, plots.

Everything is read back from the trials' user attributes (genotype, cost, status), so the
files always match the study, and `python -m search.apps.report <study dir>` rebuilds them.
"""

from __future__ import annotations

import csv
import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.config.params import as_overrides, short_value
from search.optimize.confirm import mean_and_spread
from search.optimize.results import best_trial, confirmed_summary
from search.optimize.status import Status, hand_design, hand_design_outcome, is_trained, status
from search.reports.confirmation import confirmation_lines, lead_over_hand_design
from search.reports.front import FRONT_COLUMNS, draw_front, front_values
from search.reports.plots import save_figure
from search.reports.supernet_search import candidates_name, supernet_lines
from space.genotype import Genotype
from space.io import atomic_path, dump

__all__ = ["aggregate_studies", "pareto_front", "trial_rows", "write_results", "write_trials_csv"]

log = logging.getLogger(__name__)

COLUMNS = (
    "number",
    "state",
    "key",
    "macs",
    "params",
    "train_macs",
    "latency_ms",  # measured after training (a latency budget only), and as predicted before it
    "latency_predicted_ms",
    "val_accuracy",
    "best_val_accuracy",
    "supernet_score",  # search.strategy=supernet: a candidate's score, or the score that queued a trained trial
    "epochs",
    # then one column per searched key ("train.lr", ...): `searched_keys`
    "aux_weight",
    "aux_at",
    "duration_s",
    "train_s",
    "score_s",
    "note",
)


def _notes(trials: list[FrozenTrial]) -> dict[int, str]:
    """Why a trial failed, what it duplicates, which dead trial it retries and from which epoch."""
    retried_by = {t.system_attrs["failed_trial"]: t.number for t in trials if "failed_trial" in t.system_attrs}
    notes = {}
    for t in trials:
        a = t.user_attrs
        parts = [a.get("fail_reason", "")]
        if "duplicate_of" in a:
            parts.append(f"duplicate of {a['duplicate_of']}")
        if status(t) == Status.LOST:
            parts.append(f"worker {a.get('worker', '?')} died; retried as {retried_by.get(t.number, '-')}")
        if "resumed_from" in a:
            parts.append(f"retry of {a['resumed_from']['trial']}, resumed after epoch {a['resumed_from']['epoch']}")
        elif "failed_trial" in t.system_attrs:
            parts.append(f"retry of {t.system_attrs['failed_trial']}")
        notes[t.number] = "; ".join(p for p in parts if p)
    return notes


def searched_keys(study: optuna.Study) -> list[str]:
    """The keys of search.params the study samples (from its identity), else those any trial
    recorded values of."""
    identity = study.user_attrs.get("identity") or {}
    if "params" in identity:
        return sorted(identity["params"])
    return sorted({k for t in study.get_trials(deepcopy=False) for k in t.user_attrs.get("hyperparameters", {})})


def columns(study: optuna.Study) -> tuple[str, ...]:
    """trials.csv's columns: the fixed ones with the searched keys after `epochs`."""
    at = COLUMNS.index("epochs") + 1
    return (*COLUMNS[:at], *searched_keys(study), *COLUMNS[at:])


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    rows = []
    keys = searched_keys(study)
    trials = study.get_trials(deepcopy=False)
    notes = _notes(trials)
    for t in trials:
        attrs = t.user_attrs
        state = status(t)
        genotype = attrs.get("genotype", {})
        aux = genotype.get("aux", {})
        hp = attrs.get("hyperparameters", {})
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        trained = state in (Status.COMPLETE, Status.PRUNED) or (state == Status.FAILED and attrs.get("epochs"))
        scored = "scored_by" in attrs  # a supernet search's candidate: its value is the supernet's score
        rows.append(
            {
                "number": t.number,
                "state": str(state),
                "key": attrs.get("key", ""),
                "macs": attrs.get("macs", ""),
                "params": attrs.get("params", ""),
                "train_macs": attrs.get("train_macs", ""),
                "latency_ms": round(attrs["latency_ms"], 4) if "latency_ms" in attrs else "",
                "latency_predicted_ms": round(attrs["latency_predicted_ms"], 4)
                if "latency_predicted_ms" in attrs
                else "",
                "val_accuracy": t.value if state in (Status.COMPLETE, Status.DUPLICATE) and not scored else "",
                "best_val_accuracy": attrs.get("best_val_accuracy", "") if trained and not scored else "",
                "supernet_score": t.value if scored else attrs.get("supernet_score", ""),
                "epochs": attrs.get("epochs", 0),
                **{key: hp.get(key, "") for key in keys},
                "aux_weight": aux.get("weight", "") if aux.get("at") else "",
                "aux_at": "+".join(aux.get("at", [])),
                "duration_s": round(duration, 3) if duration is not None else "",
                "train_s": round(attrs["train_seconds"], 3) if "train_seconds" in attrs else "",
                "score_s": round(attrs["score_seconds"], 4) if "score_seconds" in attrs else "",
                "note": notes[t.number],
            }
        )
    return rows


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points (cost, accuracy) not dominated by a cheaper-or-equal, more-accurate point."""
    front: list[tuple[float, float]] = []
    for macs, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((macs, acc))
    return front


def _plots(study: optuna.Study, rows: list[dict[str, Any]], directory: Path, budget_macs: int) -> list[str]:
    """history.png and accuracy_vs_cost.png; accuracy_vs_latency.png under a latency budget and
    importances.png once enough trials trained. Returns the names written, in that order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    trained = [r for r in rows if r["state"] == Status.COMPLETE]
    fig, ax = plt.subplots(figsize=(6, 4))
    _draw_history(ax, study, rows, trained)
    made.append(save_figure(fig, directory / "history.png", legend_below=True))
    fig, ax = plt.subplots(figsize=(6, 4))
    _draw_accuracy_vs_cost(ax, rows, trained, budget_macs)
    made.append(save_figure(fig, directory / "accuracy_vs_cost.png", legend_below=True))
    timed = [r for r in trained if r["latency_ms"] != ""]
    if timed:  # a latency budget: accuracy against measured latency, with its Pareto front
        fig, ax = plt.subplots(figsize=(6, 4))
        _draw_accuracy_vs_latency(ax, study, timed)
        made.append(save_figure(fig, directory / "accuracy_vs_latency.png", legend_below=True))
    importances = _importances(study)
    if importances:  # the 15 most important, and every searched setting wherever it ranks
        searched = set(searched_keys(study))
        names = [n for i, n in enumerate(importances) if i < 15 or n in searched][::-1]
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(names) + 1.2))
        _draw_importances(ax, importances, names, searched)
        made.append(save_figure(fig, directory / "importances.png", legend_below=True))
    return made


def _draw_history(ax: Any, study: optuna.Study, rows: list[dict[str, Any]], trained: list[dict[str, Any]]) -> None:
    """The optimisation history: each complete trial's accuracy and the best so far, pruned
    trials at the epoch they stopped (where the search spent compute too), over-budget ones."""
    if trained:
        xs = [r["number"] for r in trained]
        ys = [r["val_accuracy"] for r in trained]
        best, running = [], float("-inf")
        for y in ys:
            running = max(running, y)
            best.append(running)
        ax.scatter(xs, ys, s=18, label="complete")
        ax.step(xs, best, where="post", color="C3", label="best so far")
    pruned = [
        (t.number, t.intermediate_values[max(t.intermediate_values)])
        for t in study.get_trials(deepcopy=False)
        if status(t) == Status.PRUNED and t.intermediate_values
    ]
    if pruned:  # where the search spent compute too; their values are at the epoch they stopped
        ax.scatter(
            *zip(*pruned), s=14, marker="v", facecolors="none", edgecolors="grey", label="pruned (at its last epoch)"
        )
    _over_budget_rug(ax, [r["number"] for r in rows if r["state"] == Status.INFEASIBLE])
    ax.set(xlabel="trial", ylabel="validation accuracy", title="Optimisation history")


def _draw_accuracy_vs_cost(
    ax: Any, rows: list[dict[str, Any]], trained: list[dict[str, Any]], budget_macs: int
) -> None:
    """Accuracy vs cost with the Pareto front: against MACs (with the budget line) where trials
    spread over the budget; against parameters where all sit at it (budget.mode=project),
    since a MACs axis would stack every point on one vertical line."""
    macs = [r["macs"] for r in trained]
    by_macs = not trained or max(macs) - min(macs) >= 0.1 * budget_macs
    cost_of = (lambda r: r["macs"] / 1e6) if by_macs else (lambda r: r["params"] / 1e6)
    if trained:
        pts = [(cost_of(r), r["val_accuracy"]) for r in trained]
        ax.scatter(*zip(*pts), s=18, label="trained")
        front = pareto_front(pts)
        ax.step(*zip(*front), where="post", color="C2", marker="o", markerfacecolor="none", label="Pareto front")
    if by_macs:
        _macs_axis(ax, rows, budget_macs)
    else:
        ax.set(
            xlabel="parameters (millions)",
            ylabel="validation accuracy",
            title=f"Accuracy vs parameters (every trained trial at {min(macs) / 1e6:.3f}-{max(macs) / 1e6:.3f} MMACs)",
        )
        ax.title.set_fontsize(9)


def _macs_axis(ax: Any, rows: list[dict[str, Any]], budget_macs: int) -> None:
    """A MACs axis: over-budget trials as a rug, the budget line, and limits that take in both."""
    _over_budget_rug(ax, [r["macs"] / 1e6 for r in rows if r["state"] == Status.INFEASIBLE and r["macs"] != ""])
    ax.axvline(budget_macs / 1e6, color="C3", linestyle="--", label=f"budget {budget_macs / 1e6:g} MMACs")
    xs = [r["macs"] / 1e6 for r in rows if r["state"] in (Status.COMPLETE, Status.INFEASIBLE) and r["macs"] != ""]
    xs.append(budget_macs / 1e6)
    ax.set_xlim(min(xs) * 0.95, max(xs) * 1.05)  # rug markers do not take part in autoscaling
    ax.set(xlabel="inference MMACs", ylabel="validation accuracy", title="Accuracy vs multiply-adds")


def _draw_accuracy_vs_latency(ax: Any, study: optuna.Study, timed: list[dict[str, Any]]) -> None:
    """Accuracy against measured latency with its Pareto front, and the latency budget's line."""
    pts = [(r["latency_ms"], r["val_accuracy"]) for r in timed]
    ax.scatter(*zip(*pts), s=18, label="trained (measured after training)")
    ax.step(
        *zip(*pareto_front(pts)), where="post", color="C2", marker="o", markerfacecolor="none", label="Pareto front"
    )
    cap = (study.user_attrs.get("identity") or {}).get("budget", {}).get("latency_ms")
    if cap:
        ax.axvline(cap, color="C3", linestyle="--", label=f"budget {cap:g} ms (predicted)")
    ax.set(xlabel="inference latency (ms, measured)", ylabel="validation accuracy", title="Accuracy vs latency")


def _draw_importances(ax: Any, importances: dict[str, float], names: list[str], searched: set[str]) -> None:
    """Hyperparameter importances as bars: architecture in blue, search.params in orange."""
    ax.barh(names, [importances[n] for n in names], color=["C1" if n in searched else "C0" for n in names])
    ax.set(xlabel="importance (PED-ANOVA)", title="Importances: architecture (blue), search.params (orange)")


def _over_budget_rug(ax: Any, xs: list[float]) -> None:
    """Over-budget trials have no accuracy: a rug of crosses along the bottom edge."""
    if xs:
        ax.scatter(
            xs,
            [0.02] * len(xs),
            marker="x",
            color="grey",
            transform=ax.get_xaxis_transform(),
            label="over budget (not trained)",
        )


def _importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's default importances (PED-ANOVA in Optuna 5) over the parameters every trained
    trial shares; {} when too few."""
    trained = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_trained(t)]
    if len(trained) < 3:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            only_trained = optuna.create_study(direction="maximize")
            only_trained.add_trials(trained)
            return dict(optuna.importance.get_param_importances(only_trained))
    except Exception as err:  # importances are a nicety, never a reason to lose the report
        log.warning("importances not computed: %s", err)
        return {}


def _markdown_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = []
        for c in columns:
            v = r[c]
            cells.append(
                (f"{v:.4f}" if "accuracy" in c else f"{v:.4g}")
                if isinstance(v, float)
                else (f"{v:,}" if isinstance(v, int) and c in ("macs", "params") else str(v))
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _against_hand_design(study: optuna.Study, best: FrozenTrial | None) -> list[str]:
    """What the search bought: the best trial beside the hand design projected onto the same
    budget (the warm-start trial), both on the validation split."""
    warm = hand_design(study.get_trials(deepcopy=False))  # the warm-start trial, or the retry that finished it
    if warm is None:
        return ["- hand design: not trained in this study (search.warm_start=false)"]
    if status(warm) != Status.COMPLETE:
        why = hand_design_outcome(warm)
        return [f"- hand design (trial #{warm.number}, the base projected onto the budget): {why}"]
    a = warm.user_attrs
    line = (
        f"- hand design (trial #{warm.number}, the base projected onto the budget): `{a['key']}`, {a['macs']:,} MACs, "
        f"validation accuracy {warm.value:.4f}"
    )
    confirmed = lead_over_hand_design(study, best)
    if confirmed is not None:
        line += f"; {confirmed}"
    elif best is not None and best.number != warm.number:
        lead = 100 * (best.value - warm.value)  # type: ignore[operator]
        line += f"; the best trial is {lead:+.2f} points above it (one run each, within the objective's noise)"
    elif best is not None:
        line += "; no searched trial beat it"
    return [line]


def _latency_lines(study: optuna.Study, rows: list[dict[str, Any]], best: FrozenTrial | None) -> list[str]:
    """The latency budget, how well the table predicted the trained networks, and the best's latency."""
    budget = (study.user_attrs.get("identity") or {}).get("budget", {})
    if not budget.get("latency_ms"):
        return []
    timed = [r for r in rows if r["latency_ms"] != "" and r["latency_predicted_ms"] != ""]
    lines = [
        f"- latency budget: {budget['latency_ms']:g} ms at batch {budget.get('latency_batch', 1)}, "
        f"{budget.get('latency_threads', 1)} thread(s), predicted before training by the per-block table "
        "and measured after"
    ]
    if timed:
        errors = sorted(abs(r["latency_predicted_ms"] - r["latency_ms"]) / r["latency_ms"] * 100 for r in timed)
        over = sum(r["latency_ms"] > budget["latency_ms"] for r in timed)
        lines.append(
            f"- predicted vs measured over {len(timed)} trained trials: median error {errors[len(errors) // 2]:.1f}%; "
            f"{over} measured above the budget"
        )
    if best is not None and "latency_ms" in best.user_attrs:
        lines.append(
            f"- best trial's latency: {best.user_attrs['latency_ms']:.2f} ms measured, "
            f"{best.user_attrs.get('latency_predicted_ms', 0):.2f} ms predicted"
        )
    return lines


def _hyperparameter_lines(study: optuna.Study, best: FrozenTrial | None) -> list[str]:
    """Which settings were searched (and how), which were fixed, and what the best trial used:
    the report never shows a default no trial trained with."""
    identity = study.user_attrs.get("identity") or {}
    searched = identity.get("params", {})
    train = identity.get("train", {})
    fixed = [f"train.{name}={short_value(value)}" for name, value in train.items() if f"train.{name}" not in searched]
    lines = []
    if searched:
        lines.append(
            "- searched settings (search.params): " + ", ".join(f"{key}: `{expr}`" for key, expr in searched.items())
        )
        hand = hand_design(study.get_trials(deepcopy=False))
        if hand is not None:
            own = as_overrides(hand.user_attrs.get("hyperparameters") or {})
            lines.append(f"- the hand design (trial #{hand.number}) trains with its recipe's `{own}`")
        if best is not None and best.user_attrs.get("hyperparameters"):
            lines.append(
                f"- the best trial's settings: `{as_overrides(best.user_attrs['hyperparameters'])}` "
                "(best_hyperparameters.yaml)"
            )
    if fixed:
        lines.append(f"- fixed training settings: {', '.join(fixed)} in every trial")
    return lines


def _write_best_hyperparameters(best: FrozenTrial, path: Path) -> None:
    """best.yaml's companion: the values of the searched settings the best trial trained with,
    as the dotted keys of search.params, and as overrides in its header."""
    import yaml

    values = best.user_attrs.get("hyperparameters") or {}
    header = (
        f"# The settings trial #{best.number} (best.yaml) trained with; on a command line:\n"
        f"#   {as_overrides(values) or '(none searched)'}\n"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(header + (yaml.safe_dump(values, sort_keys=True) if values else ""))


def write_results(
    study: optuna.Study,
    directory: Path,
    *,
    budget_macs: int,
    storage: str,
    best: FrozenTrial | None,
    test_accuracy: float | None,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(study)
    _write_trials_csv(study, rows, directory / "trials.csv")
    if best is not None:
        dump(Genotype.from_dict(best.user_attrs["genotype"]), directory / "best.yaml")
        _write_best_hyperparameters(best, directory / "best_hyperparameters.yaml")
    plots = _plots(study, rows, directory, budget_macs)
    lines = _summary_lines(study, rows, budget_macs=budget_macs, storage=storage)
    if best is not None:
        lines += _best_lines(study, best, test_accuracy)
    lines += _latency_lines(study, rows, best)
    lines += _hyperparameter_lines(study, best)
    lines += _against_hand_design(study, best)
    lines += supernet_lines(study)
    lines += confirmation_lines(study)
    lines += _table_lines(study, rows)
    lines += [f"![{p}]({p})" for p in plots]
    with atomic_path(directory / "report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def write_trials_csv(study: optuna.Study, directory: Path) -> None:
    """`directory`/trials.csv alone: a supernet search's candidates (thousands of them, scored,
    not trained: no report or plots of their own)."""
    directory.mkdir(parents=True, exist_ok=True)
    _write_trials_csv(study, trial_rows(study), directory / "trials.csv")


def _write_trials_csv(study: optuna.Study, rows: list[dict[str, Any]], path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns(study))
        writer.writeheader()
        writer.writerows(rows)


def _summary_lines(study: optuna.Study, rows: list[dict[str, Any]], *, budget_macs: int, storage: str) -> list[str]:
    """report.md's title and the study at a glance: storage, budget, trials by state."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    over_budget_trained = sum(1 for r in rows if r["epochs"] and r["macs"] != "" and r["macs"] > budget_macs)
    return [
        f"# Study `{study.study_name}`",
        "",
        f"- storage: `{storage}`",
        f"- budget: {budget_macs:,} inference multiply-adds",
        f"- trials: {len(rows)} ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})",
        f"- over-budget trials trained: {over_budget_trained} (the budget is checked before any model is built)",
        *_pruned_line(rows),
    ]


def _pruned_line(rows: list[dict[str, Any]]) -> list[str]:
    """Where the pruner stopped trials: the epochs paid for before each decision."""
    after: dict[int, int] = {}
    for r in rows:
        if r["state"] == Status.PRUNED:
            after[int(r["epochs"] or 0)] = after.get(int(r["epochs"] or 0), 0) + 1
    if not after:
        return []
    per_epoch = ", ".join(f"{n} after epoch {epoch}" for epoch, n in sorted(after.items()))
    return [f"- pruned: {sum(after.values())} ({per_epoch}; a trial that trained all its epochs is never pruned)"]


def _best_lines(study: optuna.Study, best: FrozenTrial, test_accuracy: float | None) -> list[str]:
    a = best.user_attrs
    test = f"{test_accuracy:.4f}" if test_accuracy is not None else "not measured"
    summary = confirmed_summary(study)
    confirmed = summary["values"].get(str(best.number)) if summary is not None else None
    value = (
        f"confirmed validation accuracy {mean_and_spread(confirmed)[0]:.4f} (mean of {len(confirmed)} seeds "
        f"at the confirmation fidelity; search value {best.value:.4f})"
        if confirmed
        else f"validation accuracy {best.value:.4f}"
    )
    return [
        f"- best trial{' (confirmed)' if confirmed else ''}: #{best.number}, genotype `{a['key']}`, "
        f"{a['macs']:,} MACs, {a['params']:,} params, {value}, test accuracy {test} (held-out split, measured once)",
        "- best genotype: `best.yaml` (`space.load('best.yaml')`)",
    ]


def _table_lines(study: optuna.Study, rows: list[dict[str, Any]]) -> list[str]:
    """The ten best trials, then (where any) the failed, lost and retried ones with why."""
    trained = sorted((r for r in rows if r["state"] == Status.COMPLETE), key=lambda r: -r["val_accuracy"])
    lines = [
        "",
        "## Top trials",
        "",
        _markdown_table(
            trained[:10], ("number", "key", "macs", "params", "val_accuracy", *searched_keys(study), "aux_at")
        ),
        "",
    ]
    troubled = [r for r in rows if r["state"] in (Status.FAILED, Status.LOST) or "retry of" in r["note"]]
    if troubled:
        lines += [
            "## Failed, lost and retried trials",
            "",
            _markdown_table(troubled, ("number", "state", "epochs", "note")),
            "",
        ]
    return lines


STUDY_COLUMNS = (
    "study",
    "trained",
    "infeasible",
    "best_trial",
    "key",
    "macs",
    "params",
    "val_accuracy",
    "test_accuracy",
    "hand_val_accuracy",
    "gain_points",
    *FRONT_COLUMNS,
)


def _study_row(folder: str, study: optuna.Study) -> dict[str, Any]:
    """studies.csv's row of one job's study."""
    trials = study.get_trials(deepcopy=False)
    best = best_trial(study)
    test = study.user_attrs.get("test", {})
    hand = hand_design(trials, complete=True)
    row: dict[str, Any] = {k: "" for k in STUDY_COLUMNS}
    row.update(
        study=folder,
        trained=sum(status(t) in (Status.COMPLETE, Status.PRUNED) for t in trials),
        infeasible=sum(status(t) == Status.INFEASIBLE for t in trials),
    )
    if best is not None:
        a = best.user_attrs
        row.update(best_trial=best.number, key=a["key"], macs=a["macs"], params=a["params"])
        row["val_accuracy"] = round(best.value, 4)  # type: ignore[arg-type]
        if test.get("trial") == best.number:
            row["test_accuracy"] = round(float(test["accuracy"]), 4)
    row |= front_values(study)
    if hand is not None:
        row["hand_val_accuracy"] = round(hand.value, 4)  # type: ignore[arg-type]
        if best is not None:
            row["gain_points"] = round(100 * (best.value - hand.value), 2)  # type: ignore[operator]
    return row


def aggregate_studies(directory: Path) -> list[dict[str, Any]]:
    """One table over a search multirun (`-m budget.macs=1e6,2e6`): one row per job folder's
    study, with its best trial, its test accuracy and the hand design it started from. Written
    as `studies.csv` and `report.md` in `directory`; each job's own files are rebuilt too."""
    rows = []
    for db in sorted(directory.glob("*/study.db")):
        url = f"sqlite:///{db.resolve()}"
        names = {s.study_name for s in optuna.get_all_study_summaries(url, include_best_trial=False)}
        for name in sorted(names):
            if name not in {candidates_name(other) for other in names}:  # not a supernet search's candidates
                rows.append(_study_row(db.parent.name, optuna.load_study(study_name=name, storage=url)))
    with atomic_path(directory / "studies.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=STUDY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"# Multirun `{directory.name}`",
        "",
        f"- {len(rows)} studies from {directory}/*/study.db; each job's own report.md is in its folder",
        (
            "- val: the best trial's validation accuracy; test: measured once on the held-out split; "
            "gain: points over the hand design"
        ),
        "",
        _markdown_table(rows, STUDY_COLUMNS),
        "",
    ]
    front = draw_front(rows, directory / "front.png")
    if front is not None:  # a budget sweep: the confirmed best and the hand design at each budget
        lines += ["- confirmed: the confirmed best's mean over the confirmation's seeds, beside the hand design's", ""]
        lines += [f"![{front}]({front})", ""]
    with atomic_path(directory / "report.md") as tmp:
        tmp.write_text("\n".join(lines))
    return rows
