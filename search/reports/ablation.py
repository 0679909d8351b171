"""Reports of ablations and comparisons, built only from the stored per-run records.

summary.csv (one row per variant: cost, accuracy mean +- std over seeds, and for comparisons
latency and the paired difference to the baseline with a 95% t-interval over seeds), report.md,
accuracy.png (per variant: accuracy with error bars, the paired difference to the baseline and
latency where measured, MACs) and cost.png (inference and training MACs per variant).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path
from typing import Any

from search.optimize.status import Status
from search.reports.plots import save_figure
from space.io import atomic_path

__all__ = [
    "aggregate_multirun",
    "detectable_difference",
    "paired_difference",
    "summarise",
    "write_ablation_report",
    "rebuild",
]

COLUMNS = (
    "variant",
    "key",
    "macs",
    "params",
    "train_macs",
    "seeds",
    "val_mean",
    "val_std",
    "test_mean",
    "test_std",
    "latency_b1_ms",
    "latency_b64_ms",
    "diff_mean",
    "diff_ci_low",
    "diff_ci_high",
)


def _mean_std(values: list[float]) -> tuple[float | str, float | str]:
    if not values:
        return "", ""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def paired_difference(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, float] | None:
    """Mean of a[s] - b[s] over shared seeds, with a 95% Student-t interval; None under 2 seeds."""
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    from scipy.stats import t

    diffs = [a[s] - b[s] for s in seeds]
    mean = statistics.mean(diffs)
    half = t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


def detectable_difference(a: dict[Any, float], b: dict[Any, float]) -> float | None:
    """The smallest true mean difference a paired comparison of these pairs would detect at 95%
    confidence (two-sided) with 80% power, from their observed spread: (t_0.975 + t_0.80) x
    sd / sqrt(n), Student-t with n - 1 degrees of freedom. A "tie" says only that no difference
    larger than this was present. None under 2 pairs."""
    keys = sorted(set(a) & set(b))
    if len(keys) < 2:
        return None
    from scipy.stats import t

    spread = statistics.stdev(a[k] - b[k] for k in keys)
    return float((t.ppf(0.975, len(keys) - 1) + t.ppf(0.80, len(keys) - 1)) * spread / math.sqrt(len(keys)))


def summarise(records: list[dict[str, Any]], baseline: str | None = None) -> list[dict[str, Any]]:
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_variant.setdefault(r["variant"], []).append(r)
    test_by = {
        v: {r["seed"]: r["test_accuracy"] for r in rs if r.get("test_accuracy") is not None}
        for v, rs in by_variant.items()
    }
    rows = []
    for variant, rs in by_variant.items():
        done = [r for r in rs if r.get("state") == Status.COMPLETE]
        val_mean, val_std = _mean_std([r["val_accuracy"] for r in done])
        test_mean, test_std = _mean_std([r["test_accuracy"] for r in done])
        row = {
            "variant": variant,
            "key": rs[0]["key"],
            "macs": rs[0]["macs"],
            "params": rs[0]["params"],
            "train_macs": rs[0]["train_macs"],
            "seeds": len(done),
            "val_mean": val_mean,
            "val_std": val_std,
            "test_mean": test_mean,
            "test_std": test_std,
            "latency_b1_ms": _median(done, "latency_b1_ms"),
            "latency_b64_ms": _median(done, "latency_b64_ms"),
            "diff_mean": "",
            "diff_ci_low": "",
            "diff_ci_high": "",
        }
        if baseline is not None and variant != baseline and baseline in test_by:
            diff = paired_difference(test_by[variant], test_by[baseline])
            if diff is not None:
                row["diff_mean"], row["diff_ci_low"], row["diff_ci_high"] = diff
        rows.append(row)
    return rows


def _median(records: list[dict[str, Any]], key: str) -> float | str:
    values = [r[key] for r in records if r.get(key) is not None]
    return statistics.median(values) if values else ""


def _fmt(value: Any, column: str) -> str:
    if value == "" or value is None:
        return ""
    if column in ("macs", "params", "train_macs"):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.4f}" if column not in ("latency_b1_ms", "latency_b64_ms") else f"{value:.2f}"
    return str(value)


def _panels(rows: list[dict[str, Any]]) -> list[tuple[str, str, list[float], list[Any] | None]]:
    """The per-variant panels of accuracy.png: (title, colour, values, error bars) for accuracy,
    the paired difference to the baseline and latency where measured, and inference MACs."""
    panels: list[tuple[str, str, list[float], list[Any] | None]] = [
        (
            "test accuracy (mean +- std over seeds)",
            "C0",
            [r["test_mean"] for r in rows],
            [r["test_std"] or 0.0 for r in rows],
        ),
    ]
    if any(r.get("diff_ci_low") not in ("", None) for r in rows):  # a comparison: the baseline sits at 0
        measured = [r.get("diff_ci_low") not in ("", None) for r in rows]
        diffs = [100 * r["diff_mean"] if m else 0.0 for r, m in zip(rows, measured)]
        low = [100 * (r["diff_mean"] - r["diff_ci_low"]) if m else 0.0 for r, m in zip(rows, measured)]
        high = [100 * (r["diff_ci_high"] - r["diff_mean"]) if m else 0.0 for r, m in zip(rows, measured)]
        panels.append(("vs baseline, points (95% CI)", "C2", diffs, [low, high]))
    if all(r.get("latency_b1_ms") not in ("", None) for r in rows):
        panels.append(("latency, batch 1 (ms, median)", "C1", [r["latency_b1_ms"] for r in rows], None))
    panels.append(("inference MMACs", "C7", [r["macs"] / 1e6 for r in rows], None))
    return panels


def _plots(rows: list[dict[str, Any]], directory: Path) -> list[str]:
    """accuracy.png: one row per variant, its panels side by side (readable however close or far
    apart the costs are, unlike one scatter of labelled points); cost.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    trained = [r for r in rows if r["test_mean"] != ""]
    if trained:
        panels = _panels(trained)
        names = [r["variant"] for r in trained]
        y = list(range(len(trained)))[::-1]
        fig, axes = plt.subplots(
            1, len(panels), figsize=(3.0 * len(panels) + 1.6, 0.42 * len(trained) + 1.3), sharey=True, squeeze=False
        )
        for ax, (title, colour, values, errors) in zip(axes[0], panels):
            if errors is not None:
                ax.errorbar(values, y, xerr=errors, fmt="o", color=colour, capsize=3)
                if title.startswith("vs baseline"):
                    ax.axvline(0.0, color="grey", linewidth=0.8)
            else:
                ax.barh(y, values, color=colour, height=0.6)
                for yi, v in zip(y, values):
                    ax.annotate(f"{v:.4g}", (v, yi), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
                ax.set_xlim(0, max(values) * 1.25 or 1)
            ax.set_title(title, fontsize=9)
            ax.tick_params(axis="x", labelsize=8)
            ax.grid(axis="x", alpha=0.3)
        axes[0][0].set_yticks(y, names, fontsize=8)
        fig.tight_layout()
        made.append(save_figure(fig, directory / "accuracy.png"))
    fig, ax = plt.subplots(figsize=(6.5, 0.28 * len(rows) + 1.4))
    names = [r["variant"] for r in rows][::-1]
    ax.barh(names, [r["train_macs"] / 1e6 for r in rows][::-1], color="C1", label="training (aux heads)")
    ax.barh(names, [r["macs"] / 1e6 for r in rows][::-1], color="C0", label="inference")
    ax.set(xlabel="MMACs", title="Cost per variant")
    ax.legend(fontsize=8)
    fig.tight_layout()
    made.append(save_figure(fig, directory / "cost.png"))
    return made


def module_table(records: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: each module's MACs with its reductions vs naive (same input), from the
    base and the `naive-<module>` variants of a reductions experiment."""
    from space.accounting import cost
    from space.genotype import Genotype

    genotypes = {r["variant"]: r["genotype"] for r in records}
    if "base" not in genotypes:
        return []
    base = cost(Genotype.from_dict(genotypes["base"])).per_module
    lines = ["| module | reduced MACs | naive MACs | naive / reduced |", "|---|---|---|---|"]
    for variant, data in genotypes.items():
        if variant.startswith("naive-"):
            module = variant.removeprefix("naive-")
            naive = cost(Genotype.from_dict(data)).per_module[module].macs
            lines.append(f"| {module} | {base[module].macs:,} | {naive:,} | {naive / base[module].macs:.2f}x |")
    return lines if len(lines) > 2 else []


def write_summary(
    rows: list[dict[str, Any]], directory: Path, *, title: str, notes: list[str], extra: list[str] | None = None
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / "summary.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    columns = [c for c in COLUMNS if c != "key" and any(r.get(c) not in ("", None) for r in rows)]
    lines = [f"# {title}", "", *notes, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c), c) for c in columns) + " |" for r in rows]
    if extra:
        lines += ["", *extra]
    plots = _plots(rows, directory)
    lines += ["", *[f"![{p}]({p})" for p in plots]]
    with atomic_path(directory / "report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def write_ablation_report(records: list[dict[str, Any]], directory: Path, *, cfg: Any) -> list[dict[str, Any]]:
    e = cfg.experiment
    rows = summarise(records, baseline=e.baseline if e.kind == "compare" else None)
    setting = (
        "costs only: no data loaded, nothing trained"
        if e.cost_only
        else f"data `{cfg.data.name}`, {cfg.train.epochs} epochs, seeds {e.seeds}"
    )
    notes = [
        f"- experiment `{e.name}` ({e.kind}), base `{cfg.space.base}`, {setting}",
        "- MACs: inference multiply-adds of conv and linear layers; train_macs include the aux heads",
        "- accuracy: mean +- std over seeds on the held-out test split (identical data and training)",
    ]
    if e.kind == "compare" and e.match == "latency":
        target = (
            f"{e.budget_latency_ms:g} ms"
            if e.budget_latency_ms
            else f"`{e.baseline or e.architectures[0]}`'s predicted latency once MACs-matched"
        )
        notes.append(
            f"- every architecture width-scaled to the same predicted batch-1 latency on this machine ({target}; "
            "a per-block table fitted on width-scaled copies of them, space/latency.py): the MACs and measured "
            "latency columns show what each then costs; diff = paired test-accuracy difference to "
            f"`{e.baseline}` per seed, with a 95% t-interval"
        )
    elif e.kind == "compare":
        notes.append(
            f"- every architecture width-scaled to at most {e.budget_macs or rows[0]['macs']:,} MACs "
            "and within 1% of it; "
            f"diff = paired test-accuracy difference to `{e.baseline}` per seed, with a 95% t-interval"
        )
    extra = []
    if e.kind == "reductions" and (table := module_table(records)):
        extra = ["## Each module naive vs reduced (same input, only that module changed)", "", *table]
    write_summary(rows, directory, title=f"Experiment `{e.name}`", notes=notes, extra=extra)
    return rows


def rebuild(directory: Path) -> list[dict[str, Any]]:
    """Rebuild an ablation's summary and report from `runs/*.json` (config from `.hydra`)."""
    import yaml

    records = [json.loads(p.read_text()) for p in sorted((directory / "runs").glob("*.json"))]
    config = (
        yaml.safe_load((directory / ".hydra" / "config.yaml").read_text())
        if (directory / ".hydra" / "config.yaml").is_file()
        else {}
    )
    experiment = config.get("experiment", {})
    baseline = experiment.get("baseline") if experiment.get("kind") == "compare" else None
    rows = summarise(records, baseline=baseline)
    write_summary(
        rows,
        directory,
        title=f"Experiment `{experiment.get('name', directory.name)}` (rebuilt)",
        notes=[f"- rebuilt from {len(records)} stored runs in `runs/`"],
    )
    return rows


def aggregate_multirun(directory: Path) -> list[dict[str, Any]]:
    """One table over a Hydra multirun: each job folder's summary rows, labelled by the job."""
    rows = []
    for summary in sorted(directory.glob("*/summary.csv")):
        job = summary.parent
        if (job / "runs").is_dir():
            rebuild(job)
        with open(summary) as f:
            for row in csv.DictReader(f):
                row["variant"] = f"{job.name}:{row['variant']}" if row["variant"] != "base" else job.name
                for key in ("macs", "params", "train_macs", "seeds"):
                    row[key] = int(row[key]) if row[key] else ""
                for key in COLUMNS[6:]:
                    row[key] = float(row[key]) if row.get(key) else ""
                rows.append(row)
    write_summary(
        rows,
        directory,
        title=f"Multirun `{directory.name}`",
        notes=[f"- {len(rows)} rows from {directory}/*/summary.csv"],
    )
    return rows
