from __future__ import annotations

import pytest

import space
from search.apps.search import main as search_main
from search.budget.constraints import constraints, feasible, project
from search.config.schema import BudgetConfig
from tests.search.conftest import FOREIGN_HARDWARE, run_cli_in_process, this_machine


def test_constraints_are_relative_and_signed() -> None:
    c = space.cost(space.preset("googlenet-small"))
    values = constraints(c, BudgetConfig(macs=c.macs, params=c.params * 2))
    assert values == {"macs": 0.0, "params": -0.5}
    assert feasible(c, BudgetConfig(macs=c.macs)) and not feasible(c, BudgetConfig(macs=c.macs - 1))


@pytest.mark.parametrize("seed", range(30))
def test_projection_lands_every_network_in_the_window(seed: int) -> None:
    budget = BudgetConfig(macs=20_000_000, mode="project", min_fraction=0.9)
    g = space.random_genotype(seed)
    projected = project(g, budget, divisor=4)
    assert projected is not None
    scaled, multiplier = projected
    macs = space.cost(scaled).macs
    assert 0.9 * budget.macs <= macs <= budget.macs
    assert [len(s.modules) for s in scaled.stages] == [len(s.modules) for s in g.stages]  # only widths change
    assert (multiplier >= 1) == (space.cost(g).macs <= budget.macs)  # grows what fits, shrinks what does not


@pytest.mark.parametrize("seed", range(10))
def test_projection_lands_the_stage_shared_space_in_the_main_jobs_window(seed: int) -> None:
    budget = BudgetConfig(macs=2_000_000, mode="project")  # the main job's budget and window
    g = space.random_genotype(seed, space.Ranges(share="stage"))
    projected = project(g, budget, divisor=4)
    assert projected is not None
    macs = space.cost(projected[0]).macs
    assert budget.min_fraction * budget.macs <= macs <= budget.macs


def test_projection_gives_up_below_the_smallest_network() -> None:
    assert project(space.random_genotype(0), BudgetConfig(macs=1000, mode="project"), divisor=4) is None


def test_a_latency_budget_is_a_constraint_beside_macs() -> None:
    c = space.cost(space.preset("googlenet-small"))
    budget = BudgetConfig(macs=c.macs, latency_ms=2.0)
    assert constraints(c, budget, 3.0) == {"macs": 0.0, "latency": 0.5}
    assert feasible(c, budget, 2.0) and not feasible(c, budget, 2.5)
    assert constraints(c, budget) == {"macs": 0.0}  # MACs-only questions (the warm start's shape)


def _latency_study_args(cap: float, results: str) -> list[str]:
    return [
        "data=synthetic",
        "data.n_samples=192",
        "budget.mode=constraint",
        "budget.macs=4000000",
        f"budget.latency_ms={cap}",
        "search.n_trials=4",
        "search.n_workers=1",
        "search.n_startup_trials=2",
        "train.epochs=1",
        "logger=wandb",
        "study.name=lat",
        f"study.results_dir={results}",
        "progress=false",
    ]


@pytest.mark.slow
def test_latency_budget_end_to_end(tmp_path) -> None:
    """Predicted before training, told to the sampler, measured after; in trials.csv, W&B and
    the report, with an accuracy-versus-latency plot; a table of another machine is refused."""
    import csv
    import json
    import subprocess
    import sys

    from search.budget.constraints import latency_table
    from search.config.schema import Config
    from search.data.sources import data_config, load_data
    from search.data.splits import base_genotype
    from space.latency import LatencyTable
    from space.ranges import RandomDraw, Ranges, sample
    from tests.search.conftest import search_env
    from tests.search.wandb_records import read_runs

    results = tmp_path / "results"
    cfg = Config(data=data_config("synthetic", n_samples=192), budget=BudgetConfig(macs=4_000_000, latency_ms=1.0))
    cfg.study.results_dir = str(results)
    base = base_genotype(cfg.space.base, cfg.space.genotype, load_data(cfg.data))
    table, path = latency_table(cfg, base)  # fitted once here; the study below loads it
    predicted = sorted(table.predict(sample(RandomDraw(s), Ranges(), base)) for s in range(40))
    cap = round(predicted[len(predicted) // 3], 3)  # about a third of the draws fit
    with pytest.MonkeyPatch.context() as patch:  # in this process: the study and its files are the subject
        patch.setenv("WANDB_MODE", "offline")
        proc = run_cli_in_process(search_main, _latency_study_args(cap, str(results)), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    directory = results / "lat"
    import optuna

    study = optuna.load_study(study_name="lat", storage=f"sqlite:///{directory / 'study.db'}")
    trained = [t for t in study.trials if t.user_attrs.get("epochs")]
    over = [t for t in study.trials if t.user_attrs.get("status") == "infeasible"]
    assert trained and over
    for t in over:  # never trained, and the sampler was told why
        assert t.user_attrs["latency_predicted_ms"] > cap or t.user_attrs["macs"] > 4_000_000
        assert "latency_ms" not in t.user_attrs and max(t.constraints.values()) > 0
    for t in trained:
        assert t.user_attrs["latency_predicted_ms"] <= cap and t.user_attrs["latency_ms"] > 0
        assert len(t.constraints) == 2 and t.constraints["1"] == pytest.approx(
            (t.user_attrs["latency_predicted_ms"] - cap) / cap
        )
    with open(directory / "trials.csv") as trials_csv:
        rows = {int(r["number"]): r for r in csv.DictReader(trials_csv)}
    runs = {r.name: r for r in read_runs(directory / "wandb")}
    for t in trained:
        assert float(rows[t.number]["latency_ms"]) == pytest.approx(t.user_attrs["latency_ms"], abs=1e-4)
        assert float(rows[t.number]["latency_predicted_ms"]) == pytest.approx(
            t.user_attrs["latency_predicted_ms"], abs=1e-4
        )
        summary = runs[f"trial-{t.number:04d}-{t.user_attrs['key']}"].summary
        assert (
            summary["latency_ms"] == t.user_attrs["latency_ms"]
            and summary["latency_predicted_ms"] == t.user_attrs["latency_predicted_ms"]
        )
    report = (directory / "report.md").read_text()
    assert f"- latency budget: {cap:g} ms at batch 1, 1 thread(s)" in report and "predicted vs measured over" in report
    assert (directory / "accuracy_vs_latency.png").is_file()
    measured = json.loads((path.parent / "measured.json").read_text())
    assert len(measured) == len({t.user_attrs["key"] for t in trained})  # each genotype measured once
    # a table fitted on another machine: one line, exit 2, nothing run
    data = json.loads(path.read_text())
    data["hardware"] = FOREIGN_HARDWARE
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps(data))
    assert LatencyTable.load(foreign).hardware.startswith("cuda")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "search",
            *_latency_study_args(cap, str(tmp_path / "other")),
            f"budget.latency_table={foreign}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=search_env(),
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert (
        f"error: budget.latency_table='{foreign}': fitted on '{FOREIGN_HARDWARE}', not on this '{this_machine()}'"
        in proc.stderr
    )
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("value, shown", [("0", "0.0"), ("-1", "-1.0"), ("nan", "nan")])
def test_a_latency_budget_must_be_positive(value: str, shown: str) -> None:
    from search.apps.search import precheck
    from search.config.schema import ConfigError
    from search.data.sources import register

    register()
    with pytest.raises(
        ConfigError, match=rf"^budget.latency_ms={shown}: must be > 0 milliseconds \(or null: no latency budget\)$"
    ):
        precheck(["data=synthetic", f"budget.latency_ms={value}"])
