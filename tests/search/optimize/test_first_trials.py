"""What a study trains first and what `search.n_trials` counts: the warm start (the hand design
projected onto the budget), the proxy pre-screen's picks, and over-budget draws that are told
to the sampler but never use up a trial."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from search.apps.checks import check_search
from search.config.schema import BudgetConfig, Config, ConfigError, LoggerConfig, SearchConfig, TrainConfig
from search.data.sources import data_config, load_data
from search.data.splits import base_genotype
from search.experiments.run import run_study
from search.optimize.first_trials import warm_start_genotype
from search.optimize.status import Status, counts, status
from space.accounting import cost


def _cfg(**search: object) -> Config:
    return Config(
        search=SearchConfig(**{"n_trials": 3, "pruner": "none", "n_startup_trials": 2, **search}),  # type: ignore[arg-type]
        data=data_config("synthetic", n_samples=128, channels=1),
        train=TrainConfig(epochs=1, batch_size=32),
        budget=BudgetConfig(macs=2_000_000, mode="project"),
        logger=LoggerConfig(name="none"),
        progress=False,
    )


@pytest.mark.slow
def test_warm_start_trains_the_hand_design_first(tmp_path: Path) -> None:
    cfg = _cfg()
    result = run_study(cfg, "warm", tmp_path)
    first = result.study.trials[0]
    data = load_data(cfg.data)
    hand = warm_start_genotype(cfg, base_genotype(cfg.space.base, cfg.space.genotype, data))
    assert hand is not None and first.user_attrs["warm_start"] is True
    assert first.user_attrs["key"] == hand.key and first.params == {}  # the base, not a draw of the grid
    assert 0.7 * cfg.budget.macs <= cost(hand).macs <= cfg.budget.macs
    assert first.user_attrs["hyperparameters"] == {
        "train.lr": cfg.train.lr,
        "train.weight_decay": cfg.train.weight_decay,
    }
    report = (tmp_path / "report.md").read_text()
    assert f"hand design (trial #0, the base projected onto the budget): `{hand.key}`" in report
    cold = run_study(_cfg(warm_start=False), "cold", tmp_path / "cold")
    assert not any(t.user_attrs.get("warm_start") for t in cold.study.trials)
    assert "not trained in this study (search.warm_start=false)" in (tmp_path / "cold" / "report.md").read_text()


def test_over_budget_draws_do_not_use_up_n_trials(tmp_path: Path) -> None:
    # constraint mode with a budget that most draws exceed: n_trials still means trained networks
    cfg = _cfg(n_trials=2, warm_start=False, sampler="random")
    cfg.budget = BudgetConfig(macs=2_500_000, mode="constraint")
    cfg.data = data_config("synthetic", n_samples=128, channels=1, size=8)
    trials = run_study(cfg, "tight", tmp_path).study.trials
    outcomes = [status(t) for t in trials]
    assert outcomes.count(Status.INFEASIBLE) >= 1, outcomes
    assert sum(counts(t) for t in trials) == 2 and outcomes.count(Status.COMPLETE) == 2
    assert all(not counts(t) for t in trials if status(t) == Status.INFEASIBLE)


def test_too_many_untrained_draws_in_a_row_stop_with_advice(tmp_path: Path) -> None:
    cfg = _cfg(n_trials=2, warm_start=False, sampler="random", max_untrained_in_row=3)
    cfg.budget = BudgetConfig(macs=2_500_000, mode="constraint")
    cfg.data = data_config("synthetic", n_samples=128, channels=1, size=8)
    cfg.space.width_scale = [1.5, 2.0]  # nothing of this space fits: every draw is over budget
    cfg.space.modules_per_stage = [[2, 2], [5, 5], [2, 2]]
    with pytest.raises(ConfigError, match=r"search.max_untrained_in_row=3: the last 3 draws .* budget.mode=project"):
        run_study(cfg, "stuck", tmp_path)
    stored = optuna.load_study(study_name="stuck", storage=f"sqlite:///{tmp_path / 'study.db'}").trials
    assert [status(t) for t in stored] == [Status.INFEASIBLE] * 3  # kept: the draws taught the sampler


@pytest.mark.slow
def test_prescreen_queues_the_proxys_best_draws_first(tmp_path: Path) -> None:
    cfg = _cfg(n_trials=3, prescreen="naswot", prescreen_candidates=6, prescreen_trials=2)
    study = run_study(cfg, "screen", tmp_path).study
    trials = study.trials
    assert trials[0].user_attrs["warm_start"] is True
    picks = [t.user_attrs.get("prescreen") for t in trials[1:3]]
    assert [p["rank"] for p in picks] == [0, 1] and all(p["proxy"] == "naswot" and p["of"] == 6 for p in picks)
    assert picks[0]["score"] >= picks[1]["score"]
    assert trials[1].params and study.user_attrs["prescreen_seconds"] > 0  # real drawn parameters, timed


def test_prescreen_config_is_checked() -> None:
    for field, value, message in [
        ("prescreen", "flops", "must be one of naswot"),
        ("prescreen_trials", 300, "exceeds search.prescreen_candidates"),
    ]:
        cfg = _cfg(**{"prescreen": "naswot", field: value})
        with pytest.raises(ConfigError, match=f"search.{field}={value!r}: {message}"):
            check_search(cfg)  # the proxy's name is a start-up check: the list lives with the proxies


def test_a_searched_default_that_trains_no_trial_is_not_part_of_the_study() -> None:
    from search.config.params import parse_params
    from search.optimize.study import _identity

    cfg = Config(data=data_config("digits"))
    assert _identity(cfg, parse_params(cfg))["train"]["lr"] == cfg.train.lr  # the hand design (trial 0) trains with it
    cfg.search.warm_start = False
    assert (
        "lr" not in _identity(cfg, parse_params(cfg))["train"]
        and "weight_decay" not in _identity(cfg, parse_params(cfg))["train"]
    )
    cfg.search.params = {
        "train.lr": None,
        "data.augment": "true,false",
    }  # lr not searched: every trial trains with train.lr
    identity = _identity(cfg, parse_params(cfg))
    assert identity["train"]["lr"] == cfg.train.lr and "augment" not in identity["data"]
    assert identity["params"] == {"data.augment": "choice(true, false)"}
