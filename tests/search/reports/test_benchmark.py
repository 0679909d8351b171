"""The benchmark's anytime plot names what each search was given: its trials or its seconds."""

from __future__ import annotations

import dataclasses

from matplotlib.figure import Figure

from search.config.benchmark import BenchmarkConfig
from search.reports.benchmark import _anytime_plot


def _drawn(methods: dict[str, dict]) -> tuple[str, list[str]]:
    cfg = BenchmarkConfig()
    cfg = dataclasses.replace(cfg, benchmark=dataclasses.replace(cfg.benchmark, methods=methods))
    curves = {name: [[(10.0, 0.8), (20.0, 0.85)], [(15.0, 0.82)]] for name in methods}
    ax = Figure().subplots()  # no pyplot: no backend, nothing to close
    assert _anytime_plot(ax, cfg, curves=curves)
    return ax.get_title(), [t.get_text() for t in ax.get_legend().get_texts()]


def test_the_anytime_plot_names_a_methods_own_seconds_budget() -> None:
    title, labels = _drawn({"random": {"sampler": "random"}, "tpe-s": {"sampler": "tpe", "budget_seconds": 248}})
    assert "or the training seconds a method names" in title
    assert labels == ["random (median of 2)", "tpe-s (median of 2, 248 training s each)"]


def test_the_anytime_plot_says_trials_only_when_every_method_counts_them() -> None:
    title, labels = _drawn({"random": {"sampler": "random"}})
    assert title.endswith(f"{BenchmarkConfig().benchmark.n_trials} trained trials per search")
    assert labels == ["random (median of 2)"]
