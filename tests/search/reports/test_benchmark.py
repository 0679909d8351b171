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


def test_the_detectable_difference_is_students_t_at_95_confidence_and_80_power() -> None:
    from scipy.stats import t

    from search.reports.ablation import detectable_difference

    a, b = {0: 0.91, 1: 0.92, 2: 0.93}, {0: 0.90, 1: 0.90, 2: 0.90}  # differences 1, 2, 3 points: sd 1 point
    expected = (t.ppf(0.975, 2) + t.ppf(0.80, 2)) * 0.01 / 3**0.5
    assert abs(detectable_difference(a, b) - expected) < 1e-12
    assert detectable_difference({0: 0.9}, {0: 0.8}) is None  # one pair has no spread
    more = {k: v for k, v in enumerate([0.91, 0.92, 0.93] * 4)}, {k: 0.90 for k in range(12)}
    assert detectable_difference(*more) < expected  # the same spread over more pairs: a smaller difference seen


def test_the_variance_split_recovers_searches_and_seeds_and_predicts_the_detectable_difference() -> None:
    import random

    from search.reports.benchmark import predicted_mde, variance_components

    rng = random.Random(0)
    method, baseline = {}, {}
    for r in range(40):
        search = rng.gauss(0, 0.02)  # which network the search found: sd 2 points
        for s in range(4):
            method[r, s] = 0.9 + search + rng.gauss(0, 0.01)  # a seed: sd 1 point
            baseline[r, s] = 0.9
    between, within, repeats, seeds = variance_components(method, baseline)
    assert (repeats, seeds) == (40, 4)
    assert 0.015 < between**0.5 < 0.025 and 0.008 < within**0.5 < 0.012
    # more seeds shrink only the seed part; more repeats shrink both
    assert predicted_mde(between, within, 10, 8) > predicted_mde(between, within, 20, 2)
    assert predicted_mde(between, within, 10, 2) > predicted_mde(between, within, 10, 8)
    assert variance_components({(0, 0): 0.9}, {(0, 0): 0.8}) is None
