"""The evaluation protocol (`python -m search.apps.benchmark`): its size=quick end to end, its cache,
its bad inputs, and the anytime statistics the goals are judged by."""

from __future__ import annotations

import csv
import statistics
import subprocess
from pathlib import Path

import optuna
import pytest

from search.apps.benchmark import main as benchmark_main
from search.optimize.results import CONFIRMED_ATTR, best_trial
from search.reports.benchmark import median_curve, reach_fraction
from tests.search.conftest import run_cli_in_process

# size=quick on fewer images, its searches and retrainings in the test's process (benchmark.jobs=1)
QUICK = [
    "size=quick",
    "data=digits",
    "data.subset=120",
    "benchmark.retrain_subset=120",
    "benchmark.n_trials=2",
    "benchmark.jobs=1",
    "search.confirm.top_k=1",  # each search's best still named by its confirmation, one network per search
    "logger=none",
]


def _benchmark(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`python -m search.apps.benchmark args`, in this process (with benchmark.jobs=1 its
    searches and retrainings run here too): what it trains, caches and reports is the subject."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        return run_cli_in_process(benchmark_main, args, cwd)


@pytest.mark.slow
def test_quick_benchmark_end_to_end_and_cached(tmp_path: Path) -> None:
    proc = _benchmark(QUICK, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "results" / "benchmark-quick"
    expected = {"report.md", "summary.csv", "runs.csv", "anytime.png", "edf.png", "test_accuracy.png"}
    assert expected <= {p.name for p in out.iterdir()}
    methods = ("random", "tpe", "random-stage", "evolution-stage")
    rows = {r["arm"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert set(rows) == {"hand design", *methods}
    assert max(int(r["macs_max"]) for r in rows.values()) <= 2_000_000
    assert min(int(r["macs_min"]) for r in rows.values()) >= 0.99 * 2_000_000  # matched MACs, never above
    assert int(rows["hand design"]["runs"]) == 2 and all(int(rows[m]["runs"]) == 2 * 2 for m in methods)
    assert rows["tpe"]["vs_hand_mean"] and rows["tpe"]["vs_baseline_mean"] and not rows["random"]["vs_baseline_mean"]
    assert rows["tpe"]["vs_baseline_repeats_mean"]
    assert int(rows["tpe"]["search_trained_trials"]) == 2 * 2  # repeats x n_trials, all trained
    searches = sorted(p.name for p in (out / "searches").iterdir())
    assert searches == sorted(f"{m}-r{r}" for m in methods for r in (0, 1))
    # One retrained network per repeat: the search's confirmed best, retrained with seeds 100 and 101.
    runs = list(csv.DictReader((out / "runs.csv").open()))
    assert len(runs) == 2 + 4 * 2 * 2 and {r["seed"] for r in runs} == {"100", "101"}
    for method in methods:
        for repeat in (0, 1):
            name = f"{method}-r{repeat}"
            study = optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'searches' / name / 'study.db'}")
            assert study.user_attrs.get(CONFIRMED_ATTR), name  # each search named its best by confirmation
            best = best_trial(study)
            sources = {r["source"] for r in runs if r["arm"] == method and r["repeat"] == str(repeat)}
            assert sources == {f"{name} trial {best.number}"}
    report = (out / "report.md").read_text()
    assert "- tpe (default): retrained best beats random's, 95% interval above 0" in report
    assert report.count("median anytime curve reaches random's median final best in <= 50%") == 3
    assert "## Design spaces" in report and "| random-stage | stage |" in report
    again = _benchmark(QUICK, tmp_path)  # nothing left to train
    assert again.returncode == 0, again.stderr
    assert "retraining: 18 of 18 runs cached" in again.stdout and "retrain hand-design seed" not in again.stdout


def test_methods_are_paired_with_the_baseline_by_repeat_and_seed() -> None:
    """A method 1 point above random in every (repeat, seed) pair, whatever the repeat's level,
    differs by exactly +1 point; against the hand design each run pairs with the hand's same seed."""
    from search.config.benchmark import BenchmarkConfig
    from search.reports.benchmark import _rows

    level = {0: 0.80, 1: 0.90, 2: 0.85}
    records = [
        {"arm": "hand design", "repeat": None, "seed": s, "key": "h", "macs": 1, "source": "h", "test_accuracy": h}
        for s, h in ((100, 0.70), (101, 0.71))
    ]
    for arm, gain in (("random", 0.0), ("tpe", 0.01)):
        records += [
            {
                "arm": arm,
                "repeat": r,
                "seed": s,
                "key": f"{arm}{r}",
                "macs": 1,
                "source": arm,
                "test_accuracy": level[r] + gain + (s - 100) / 100,
            }
            for r in level
            for s in (100, 101)
        ]
    rows = {r["arm"]: r for r in _rows(BenchmarkConfig(), {}, records)}
    tpe = rows["tpe"]
    assert tpe["networks"] == 3 and tpe["runs"] == 6
    for prefix in ("vs_baseline", "vs_baseline_repeats"):
        assert tpe[f"{prefix}_mean"] == pytest.approx(0.01)
        assert tpe[f"{prefix}_ci_low"] == pytest.approx(0.01) == tpe[f"{prefix}_ci_high"]
    # against the hand design: (level + 0.01 + d) - (0.70 + d) for d = 0, 0.01, seed 101 being 0.01 above 100 in both
    assert tpe["vs_hand_mean"] == pytest.approx(statistics.fmean(level[r] + 0.01 - 0.70 for r in level))
    assert rows["random"]["vs_baseline_mean"] == "" and rows["hand design"]["vs_hand_mean"] == ""


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
    proc = run_cli_in_process(benchmark_main, [*QUICK, override], tmp_path)
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


def test_a_method_added_on_the_command_line_is_checked_like_the_shipped_ones(tmp_path: Path) -> None:
    """`+benchmark.methods.<name>={...}` passes the checks (the run then stops on the next bad value);
    an unknown key or a wrong type in it fails in one line."""
    added = "+benchmark.methods.gp={sampler: gp, pruner: none}"
    proc = run_cli_in_process(benchmark_main, [*QUICK, added, "benchmark.repeats=0"], tmp_path)
    assert proc.returncode == 2 and "benchmark.repeats=0: must be >= 1" in proc.stderr, proc.stderr
    for override, message in [
        (
            "+benchmark.methods.gp={sampler: gp, prune: none}",
            "benchmark.methods.gp.prune: unknown key (one of sampler, pruner, warm_start, prescreen, share, "
            "budget_seconds, n_trials, strategy, train_top_k)",
        ),
        ("+benchmark.methods.gp={sampler: gp, warm_start: 3}", "benchmark.methods.gp.warm_start=3: must be a bool"),
        ("+benchmark.methods.gp={sampler: gp, budget_seconds: 0}", "benchmark.methods.gp.budget_seconds=0: must be >"),
    ]:
        proc = run_cli_in_process(benchmark_main, [*QUICK, override], tmp_path)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_method_type_checks_cover_every_method_field() -> None:
    from dataclasses import fields

    from search.config.benchmark import _METHOD_TYPES, MethodConfig

    assert list(_METHOD_TYPES) == [f.name for f in fields(MethodConfig)]


def test_a_method_with_a_budget_in_seconds_searches_until_it_is_spent(tmp_path: Path) -> None:
    """A method compared at equal seconds: its own search.budget_seconds and cap on networks; the
    other methods keep benchmark.n_trials and the shared search.budget_seconds."""
    from search.config.benchmark import BenchmarkConfig, MethodConfig
    from search.experiments.benchmark import search_config

    cfg = BenchmarkConfig()
    timed = search_config(cfg, "tpe-s", MethodConfig(budget_seconds=240.0, n_trials=48), 0, tmp_path)
    assert (timed.search.budget_seconds, timed.search.n_trials) == (240.0, 48)
    plain = search_config(cfg, "tpe", MethodConfig(), 0, tmp_path)
    assert (plain.search.budget_seconds, plain.search.n_trials) == (None, cfg.benchmark.n_trials)


def test_a_supernet_method_searches_with_a_supernet_of_its_own_per_repeat_and_counts_every_stage(
    tmp_path: Path,
) -> None:
    """size=supernet's method: each repeat a supernet seeded by the repeat (independent searches),
    n_trials candidates, its top-k trained; its seconds count the supernet, the scoring and the
    confirmation beside the trained trials, and its anytime curve starts after them."""
    from search.config.benchmark import BenchmarkConfig, MethodConfig
    from search.experiments.benchmark import search_config
    from search.reports.benchmark import _search_costs, anytime_curve
    from search.reports.supernet_search import SUPERNET_ATTR

    cfg = BenchmarkConfig()
    method = MethodConfig(strategy="supernet", sampler="tpe", n_trials=120, train_top_k=3)
    for repeat in (0, 1):
        own = search_config(cfg, "supernet", method, repeat, tmp_path)
        assert (own.search.strategy, own.search.n_trials, own.search.train_top_k) == ("supernet", 120, 3)
        assert own.supernet.seed == repeat and own.search.seed == repeat
    study = optuna.create_study(direction="maximize")
    study.set_user_attr(SUPERNET_ATTR, {"supernet_seconds": 200.0, "candidates_wall_seconds": 60.0})
    study.set_user_attr(CONFIRMED_ATTR, {"top_k": 0, "trials": [], "seconds": 90.0})
    for value in (0.80, 0.85):
        study.add_trial(
            optuna.trial.create_trial(value=value, user_attrs={"status": "complete", "train_seconds": 15.0})
        )
    assert anytime_curve(study) == [(275.0, 0.80), (290.0, 0.85)]  # after the supernet and the scoring
    assert _search_costs([study])["search_seconds"] == 200.0 + 60.0 + 30.0 + 90.0
