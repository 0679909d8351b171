"""The evaluation protocol (`python -m search.apps.benchmark`): its size=quick end to end, its cache,
its bad inputs, and the anytime statistics the goals are judged by."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from search.reports.benchmark import median_curve, reach_fraction
from tests.search.conftest import search_env

QUICK = ["size=quick", "data=digits", "logger=none"]


def _benchmark(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "search.apps.benchmark", *args],
        cwd=cwd,
        env=search_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
def test_quick_benchmark_end_to_end_and_cached(tmp_path: Path) -> None:
    proc = _benchmark(QUICK, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "results" / "benchmark-quick"
    assert {"report.md", "summary.csv", "anytime.png", "test_accuracy.png"} <= {p.name for p in out.iterdir()}
    rows = {r["arm"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert set(rows) == {"hand design", "random", "tpe", "tpe-hyperband", "tpe-grad_norm", "tpe-nopruner"}
    macs = [int(r["macs"]) for r in rows.values()]
    assert max(macs) <= 2_000_000 and min(macs) >= 0.99 * 2_000_000  # matched MACs, never above
    assert all(int(r["seeds"]) == 2 for r in rows.values())
    assert rows["tpe"]["vs_hand_mean"] and rows["tpe"]["vs_baseline_mean"] and not rows["random"]["vs_baseline_mean"]
    assert int(rows["tpe"]["search_trained_trials"]) == 2 * 3  # repeats x n_trials, all trained
    assert float(rows["tpe-grad_norm"]["prescreen_seconds"]) > 0
    searches = sorted(p.name for p in (out / "searches").iterdir())
    assert searches == sorted(
        f"{m}-r{r}" for m in ("random", "tpe", "tpe-hyperband", "tpe-grad_norm", "tpe-nopruner") for r in (0, 1)
    )
    report = (out / "report.md").read_text()
    for method in ("tpe", "tpe-hyperband", "tpe-grad_norm", "tpe-nopruner"):
        assert f"- {method}: best beats the hand design by >= 1.0 point" in report
    assert report.count("median anytime curve reaches random's median final best") == 4
    again = _benchmark(QUICK, tmp_path)  # nothing left to train
    assert again.returncode == 0, again.stderr
    assert "retraining: 12 of 12 runs cached" in again.stdout and "retrain hand design seed" not in again.stdout


@pytest.mark.parametrize(
    "override,message",
    [
        ("benchmark.baseline=grid", "benchmark.baseline='grid': not one of benchmark.methods"),
        ("benchmark.repeats=0", "benchmark.repeats=0: must be >= 1"),
        ("+benchmark.methods.bad.sampler=cma", "benchmark.methods.bad.sampler='cma': must be one of"),
        ("size=huge", "size=huge: no such option"),
    ],
)
def test_bad_benchmark_inputs_fail_in_one_line(tmp_path: Path, override: str, message: str) -> None:
    proc = _benchmark([*QUICK, override], tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "results").exists()


def test_median_curve_never_falls_and_reach_fraction() -> None:
    a, b, c = [(1.0, 0.5), (3.0, 0.7)], [(2.0, 0.6), (4.0, 0.65)], [(5.0, 0.9)]
    xs, median, _, _ = median_curve([a, b, c])
    assert list(xs) == [2.0, 3.0, 4.0, 5.0] and list(median) == [0.5, 0.6, 0.65, 0.7]
    assert all(later >= earlier for earlier, later in zip(median, median[1:]))
    # baseline [a, b]: median final 0.675 over a median 3.5 s; method [c, c] gets there at 5 s
    assert reach_fraction([c, c], [a, b]) == pytest.approx(5.0 / 3.5)
    assert reach_fraction([b, b], [a, c]) is None  # 0.65 never reaches the median final 0.8


@pytest.mark.slow
def test_a_method_added_on_the_command_line_is_checked_like_the_shipped_ones(tmp_path: Path) -> None:
    """`+benchmark.methods.<name>={...}` passes the checks (the run then stops on the next bad value);
    an unknown key or a wrong type in it fails in one line."""
    added = "+benchmark.methods.gp={sampler: gp, pruner: none}"
    proc = _benchmark([*QUICK, added, "benchmark.repeats=0"], tmp_path)
    assert proc.returncode == 2 and "benchmark.repeats=0: must be >= 1" in proc.stderr, proc.stderr
    for override, message in [
        (
            "+benchmark.methods.gp={sampler: gp, prune: none}",
            "benchmark.methods.gp.prune: unknown key (one of sampler, pruner, warm_start, prescreen)",
        ),
        ("+benchmark.methods.gp={sampler: gp, warm_start: 3}", "benchmark.methods.gp.warm_start=3: must be a bool"),
    ]:
        proc = _benchmark([*QUICK, override], tmp_path)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_method_type_checks_cover_every_method_field() -> None:
    from dataclasses import fields

    from search.config.benchmark import _METHOD_TYPES, MethodConfig

    assert list(_METHOD_TYPES) == [f.name for f in fields(MethodConfig)]
