"""Ablation and comparison entry points end to end on synthetic data, 1 epoch."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import space
from search.apps.ablate import main as ablate_main
from search.apps.cli import CONF_DIR
from search.apps.compare import main as compare_main
from search.apps.report import main as report_main
from search.config.ablate import AblateConfig, ExperimentConfig, register_ablate
from search.config.schema import ConfigError
from search.data.sources import register
from space.ablations import reduction_variants
from space.accounting import cost
from space.presets import preset
from tests.search.conftest import run_cli_in_process

FAST = [
    "data=synthetic",
    "data.n_samples=256",
    "train.epochs=1",
    "train.batch_size=32",
    "logger=none",
    "experiment.seeds=2",
]


def _run(module: str, args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m <module> args` run in this process (run_cli_in_process): what the commands
    train, cache and report is the subject here, not a new interpreter's start-up."""
    main = {
        "search.apps.ablate": ablate_main,
        "search.apps.compare": compare_main,
        "search.apps.report": lambda: sys.exit(report_main()),
    }[module]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        proc = run_cli_in_process(main, args, cwd)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout + proc.stderr)
    return proc


def _summary(directory: Path) -> dict[str, dict[str, str]]:
    with open(directory / "summary.csv") as f:
        return {row["variant"]: row for row in csv.DictReader(f)}


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")))
def test_every_experiment_file_composes(experiment: str) -> None:
    """An ablation's or comparison's file sets experiment.kind; a search's (search-*.yaml) does not."""
    import yaml

    register()
    register_ablate()
    for_search = "experiment" not in yaml.safe_load((CONF_DIR / "experiment" / f"{experiment}.yaml").read_text())
    assert for_search == experiment.startswith("search-")  # the convention the files' headers state
    config = "search" if for_search else "compare" if experiment == "compare" else "ablate"
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config, overrides=[f"experiment={experiment}"])
        plain = compose(config) if for_search else None
    if for_search:  # a search's experiment changes the search's own settings
        assert cfg != plain and cfg.study.name != plain.study.name
    else:
        assert cfg.experiment.name == experiment


@pytest.mark.slow
def test_reductions_ablation_trains_caches_and_reports(tmp_path: Path) -> None:
    args = ["experiment=reductions", "experiment.per_module=false", "experiment.reduce_ratios=[0.5]", *FAST]
    first = _run("search.apps.ablate", args, tmp_path)
    directory = tmp_path / "results" / "reductions"
    rows = _summary(directory)
    assert list(rows) == ["base", "naive", "3x3-reduce-only", "5x5-reduce-only", "ratio-0.5"]
    assert all(rows[v]["seeds"] == "2" and rows[v]["test_mean"] for v in rows)
    # costs in the table are the analytic costs of the generated variants
    data_shape = {"resolution": 8, "in_channels": 3, "num_classes": 4}
    base = space.preset("googlenet-small", aux={"head": {"pool": "adaptive", "size": 2}}, **data_shape)
    naive = reduction_variants(base, ratios=(0.5,), per_module=False)["naive"]
    assert int(rows["naive"]["macs"]) == space.cost(naive).macs
    assert int(rows["base"]["macs"]) == space.cost(base).macs
    assert len(list((directory / "runs").glob("*.json"))) == 10
    for name in ("report.md", "accuracy.png", "cost.png"):
        assert (directory / name).stat().st_size > 500
    assert first.stdout.count("cached") == 0
    again = _run("search.apps.ablate", args, tmp_path)  # nothing retrained
    assert again.stdout.count("cached") == 10
    more = _run("search.apps.ablate", [*args[:-1], "experiment.seeds=3"], tmp_path)  # only the new seed trains
    assert more.stdout.count("cached") == 10 and more.stdout.count(": test ") == 5
    # `python -m search.apps.report` rebuilds the table from the stored runs
    (directory / "summary.csv").unlink()
    _run("search.apps.report", [str(directory)], tmp_path)
    assert _summary(directory)["naive"]["seeds"] == "3"


@pytest.mark.slow
def test_aux_ablation_reports_train_cost(tmp_path: Path) -> None:
    _run(
        "search.apps.ablate",
        ["experiment=aux", "experiment.aux_placements=[[],[4a,4d]]", "experiment.aux_weights=[0.0,0.3]", *FAST],
        tmp_path,
    )
    rows = _summary(tmp_path / "results" / "aux")
    assert list(rows) == ["aux-none", "aux-4a+4d", "aux-4a+4d-w0"]
    assert rows["aux-none"]["macs"] == rows["aux-4a+4d"]["macs"]
    assert int(rows["aux-4a+4d"]["train_macs"]) > int(rows["aux-none"]["train_macs"])


@pytest.mark.slow
def test_aux_weight_multirun_aggregates_into_one_table(tmp_path: Path) -> None:
    _run("search.apps.ablate", ["-m", "experiment=aux-weight", "space.aux.weight=0,0.3", *FAST], tmp_path)
    directory = tmp_path / "results" / "aux-weight"
    _run("search.apps.report", [str(directory)], tmp_path)
    rows = _summary(directory)
    assert len(rows) == 2 and all("space.aux.weight=" in v for v in rows)
    weights = sorted(json.loads(p.read_text())["genotype"]["aux"]["weight"] for p in directory.glob("*/runs/*.json"))
    assert weights == [0.0, 0.0, 0.3, 0.3]


@pytest.mark.slow
def test_compare_matches_budgets_and_reports_paired_differences(tmp_path: Path) -> None:
    budget = 1_500_000
    _run(
        "search.apps.compare",
        [
            *FAST,
            f"experiment.budget_macs={budget}",
            "experiment.latency_repeats=3",
            "experiment.architectures=[googlenet-small,googlenet-naive]",
            "experiment.baseline=googlenet-small",
            "data.resolution=null",
        ],
        tmp_path,
    )
    rows = _summary(tmp_path / "results" / "compare")
    assert list(rows) == ["googlenet-small", "googlenet-naive"]
    for row in rows.values():
        assert 0.99 * budget <= int(row["macs"]) <= budget
        assert float(row["latency_b1_ms"]) > 0 and float(row["latency_b64_ms"]) > 0
    naive = rows["googlenet-naive"]
    assert float(naive["diff_ci_low"]) <= float(naive["diff_mean"]) <= float(naive["diff_ci_high"])
    assert rows["googlenet-small"]["diff_mean"] == ""


def test_bad_experiment_input_is_one_line(tmp_path: Path) -> None:
    proc = run_cli_in_process(ablate_main, ["experiment=nope"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "nope" in proc.stderr
    proc = run_cli_in_process(compare_main, ["experiment.baseline=resnet"], tmp_path)
    assert proc.returncode == 2 and "experiment.baseline='resnet'" in proc.stderr


def _stand_in_table(genotypes, setting, **_):
    """A seeded stand-in for a fitted latency table: 0.01 ms per layer and 1e-8 ms per MAC, the
    overhead-bound shape of small inputs on a CPU. The scaling code is under test, not the clock."""
    from space.latency import LatencyTable, hardware, network_blocks

    kinds = {k for g in genotypes for b in network_blocks(g) for k in b.features()}
    return LatencyTable(
        setting=setting,
        hardware=hardware(setting.device),
        costs={k: 0.01 if k.endswith(":n") else 1e-8 if k.endswith(":macs") else 0.0 for k in kinds},
    )


@pytest.mark.slow
def test_compare_can_match_latency_instead_of_macs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """experiment.match=latency: each architecture width-scaled to one predicted latency; the
    report then shows what each costs in MACs and in measured latency, side by side."""
    import search.experiments.ablate
    from space.ablations import match_budget

    monkeypatch.setattr(search.experiments.ablate, "fit_table", _stand_in_table)
    cfg = AblateConfig(
        experiment=ExperimentConfig(
            kind="compare",
            match="latency",
            width_divisor=4,
            baseline="googlenet-small",
            architectures=["googlenet-small", "googlenet-naive"],
        )
    )
    shape = {"resolution": 8, "in_channels": 3, "num_classes": 4, "aux": {"head": {"pool": "adaptive", "size": 2}}}
    matched = {
        n: match_budget(preset(n, **shape), 1_500_000, divisor=4) for n in ("googlenet-small", "googlenet-naive")
    }
    scaled = search.experiments.ablate._match_latency(matched, cfg)
    table = _stand_in_table(list(scaled.values()), search.experiments.ablate.latency_setting(cfg))
    assert scaled["googlenet-small"] == matched["googlenet-small"]  # the baseline is the target
    assert table.predict(scaled["googlenet-naive"]) <= table.predict(scaled["googlenet-small"])
    assert len({cost(g).macs for g in scaled.values()}) == 2  # equal latency is not equal MACs
    # where latency hardly grows with width (fewer layers, not fewer MACs, make naive fast),
    # widening stops at 4x the matched MACs
    naive = cost(scaled["googlenet-naive"]).macs
    assert cost(matched["googlenet-naive"]).macs < naive <= 4 * cost(matched["googlenet-naive"]).macs
    cfg.experiment.budget_latency_ms = 0.001
    with pytest.raises(
        ConfigError,
        match=r"^experiment.budget_latency_ms=0.001: googlenet-small cannot be width-scaled under it "
        r"\(its layers' fixed costs alone exceed it\); raise it$",
    ):
        search.experiments.ablate._match_latency(matched, cfg)
    # end to end with a real table: measured on this machine, however busy it is
    _run(
        "search.apps.compare",
        [
            *FAST,
            "experiment.seeds=1",
            "experiment.budget_macs=1500000",
            "experiment.latency_repeats=3",
            "experiment.match=latency",
            "experiment.architectures=[googlenet-small,googlenet-naive]",
            "experiment.baseline=googlenet-small",
            "data.resolution=null",
        ],
        tmp_path,
    )
    rows = _summary(tmp_path / "results" / "compare")
    assert all(int(r["macs"]) > 0 and float(r["latency_b1_ms"]) > 0 for r in rows.values())
    report = (tmp_path / "results" / "compare" / "report.md").read_text()
    assert "width-scaled to the same predicted batch-1 latency on this machine" in report
    header = next(line for line in report.splitlines() if line.startswith("| variant"))
    assert "macs" in header and "latency_b1_ms" in header  # side by side for every architecture
    proc = _run("search.apps.compare", [*FAST, "experiment.match=speed"], tmp_path, check=False)
    assert proc.returncode == 2 and "experiment.match='speed': must be macs or latency" in proc.stderr


def test_ctrl_c_stops_an_ablation_in_one_line_and_the_same_command_trains_only_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real SIGINT to this process during the third run (in-process: the command's own
    handlers): one line, exit 130, no traceback; the same command then trains only the runs
    that had not finished."""
    import signal

    import search.experiments.ablate as ablate

    args = ["experiment=reductions", "experiment.per_module=false", "experiment.reduce_ratios=[]", *FAST]
    args.append("train.epochs=2")
    real, started = ablate.train_network, []

    def ctrl_c_in_the_third(*a, **kw):
        started.append(1)
        if len(started) == 3:  # as a terminal sends it, mid-training: after the first of two epochs
            on_epoch = kw["on_epoch"]
            kw["on_epoch"] = lambda r: (on_epoch(r), os.kill(os.getpid(), signal.SIGINT))
        return real(*a, **kw)

    monkeypatch.setattr(ablate, "train_network", ctrl_c_in_the_third)
    stopped = run_cli_in_process(ablate_main, args, tmp_path)
    directory = tmp_path / "results" / "reductions"
    assert stopped.returncode == 130, stopped.stderr
    assert "Traceback" not in stopped.stdout + stopped.stderr
    (line,) = stopped.stderr.strip().splitlines()
    assert line.startswith("stopped by Ctrl-C (SIGINT): every finished run is kept in "), line
    assert line.endswith("the same command trains only the rest")
    assert len(list((directory / "runs").glob("*.json"))) == 2  # the two finished runs, not the stopped one
    monkeypatch.setattr(ablate, "train_network", real)
    again = run_cli_in_process(ablate_main, args, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("cached") == 2 and again.stdout.count(": test ") == 6  # 4 variants x 2 seeds
