"""search.params: Hydra sweep expressions parsed by Hydra, checked against the schema, drawn per
trial beside the architecture, applied to the trial's own config, and shown wherever a trial is."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pytest
import yaml

from search.apps.search import main as search_main
from search.apps.search import precheck
from search.config.ablate import register_ablate
from search.config.params import SearchedParam, apply_values, config_values, parse_params
from search.config.schema import (
    DEFAULT_PARAMS,
    BudgetConfig,
    Config,
    ConfigError,
    LoggerConfig,
    SearchConfig,
    TrainConfig,
)
from search.data.sources import data_config, register
from search.experiments.run import run_study
from search.training.trainer import Trainer
from space.ranges import RandomDraw
from tests.search.conftest import run_cli_in_process
from tests.search.wandb_records import read_runs

register()
register_ablate()


def _parsed(key: str, expression: str, cfg: Config | None = None) -> SearchedParam:
    cfg = cfg or Config(data=data_config("digits"))
    cfg.search.params = {key: expression}
    (param,) = parse_params(cfg)
    return param


KINDS = [
    ("train.lr", "tag(log, interval(0.0001, 0.1))", SearchedParam("train.lr", "float", low=0.0001, high=0.1, log=True)),
    ("train.momentum", "interval(0.8, 0.99)", SearchedParam("train.momentum", "float", low=0.8, high=0.99)),
    ("train.batch_size", "choice(32, 64, 128)", SearchedParam("train.batch_size", "choice", choices=(32, 64, 128))),
    ("train.batch_size", "32,64", SearchedParam("train.batch_size", "choice", choices=(32, 64))),
    (
        "train.epochs",
        "range(1, 5)",
        SearchedParam("train.epochs", "int", low=1, high=4, step=1),
    ),  # Hydra's range stops before 5
    ("train.batch_size", "range(16, 129, 16)", SearchedParam("train.batch_size", "int", low=16, high=128, step=16)),
    (
        "train.batch_size",
        "tag(log, interval(16, 256))",
        SearchedParam("train.batch_size", "int", low=16, high=256, log=True),
    ),
    (
        "train.decay_every",
        "interval(2, 8)",
        SearchedParam("train.decay_every", "int", low=2, high=8),
    ),  # an integer interval
    ("train.epochs", "shuffle(range(1, 3))", SearchedParam("train.epochs", "int", low=1, high=2)),
    ("train.lr_decay", "range(0.9, 1.0, 0.05)", SearchedParam("train.lr_decay", "choice", choices=(0.9, 0.95))),
    ("train.schedule", "choice(paper, cosine)", SearchedParam("train.schedule", "choice", choices=("paper", "cosine"))),
    (
        "train.weight_decay",
        "choice(0, 1e-4)",
        SearchedParam("train.weight_decay", "choice", choices=(0.0, 1e-4)),
    ),  # ints of a float field
    ("data.augment", "choice(true, false)", SearchedParam("data.augment", "choice", choices=(True, False))),
]


@pytest.mark.parametrize("key, expression, expected", KINDS, ids=[e for _, e, _ in KINDS])
def test_each_expression_kind_is_the_distribution_hydra_means(
    key: str, expression: str, expected: SearchedParam
) -> None:
    param = _parsed(key, expression)
    assert param == expected
    assert _parsed(key, param.expression) == param  # the canonical form a study stores parses back
    draw = RandomDraw(seed=0)
    values = [param.draw(draw) for _ in range(200)]
    if param.kind == "choice":
        assert set(values) == set(param.choices)
    else:
        assert all(param.low <= v <= param.high for v in values) and len(set(values)) > 1
        assert all(isinstance(v, int) for v in values) == (param.kind == "int")
        if param.kind == "int":
            assert all((v - param.low) % param.step == 0 for v in values)
    # Optuna gets the same distribution under the config key
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    from search.optimize.sample import TrialDraw

    value = param.draw(TrialDraw(trial))
    dist = trial.distributions[key]
    assert dist._contains(dist.to_internal_repr(value))
    if param.kind == "choice":
        assert tuple(dist.choices) == param.choices  # type: ignore[attr-defined]
    else:
        assert (dist.low, dist.high, dist.log) == (param.low, param.high, param.log)  # type: ignore[attr-defined]


BAD = [
    ("train.lr", "interval(0.1, 1", "not a Hydra sweep expression"),
    ("train.lr", "0.3", "one value, not a sweep: set train.lr=0.3 instead"),
    ("train.lr", "tag(foo, interval(0.1, 1))", "tag foo: only log changes how a value is drawn"),
    ("train.lr", "tag(log, interval(0, 1))", "a log interval needs low > 0"),
    ("train.lr", "interval(1, 0.1)", "an interval needs finite low <= high"),
    ("train.lr", "choice(fast, slow)", "fast is not a float, the type of train.lr"),
    ("train.batch_size", "interval(1.5, 8)", "train.batch_size is an int: an interval of it needs whole ends"),
    ("train.batch_size", "choice(32, 64.5)", "64.5 is not an int"),
    ("train.batch_size", "choice(0, 32)", "train.batch_size=0: must be > 0"),  # validate_common, at every value
    ("train.batch_size", "tag(log, range(8, 64, 8))", "a log range needs step 1"),
    ("train.batch_size", "tag(log, choice(8, 16))", "tag log needs an interval or an int range, not a choice"),
    ("train.momentum", "interval(0.5, 1.0)", "train.momentum=1.0: must be in [0, 1)"),
    ("train.schedule", "choice(paper, linear)", "train.schedule='linear': must be one of paper, cosine"),
    ("train.epochs", "range(5, 1)", "holds no value"),
    ("train.lrr", "interval(0.1, 1)", "not a field of train (its fields: epochs, batch_size, lr"),
    ("model.optimizer.lr", "interval(0.1, 1)", "lightning-hydra-template's model.optimizer.lr is train.lr here"),
    ("data.batch_size", "choice(32, 64)", "lightning-hydra-template's data.batch_size is train.batch_size here"),
    ("train.device", "cpu,cuda", "says how a run executes, not what it computes"),
    ("train.seed", "range(3)", "a seed is not a hyperparameter"),
    ("data.name", "digits,synthetic", "is the data set: a study trains and validates on one"),
    ("data.seed", "range(3)", "fixes the images every trial is validated on"),
    ("data.subset", "choice(100, 200)", "fixes the images every trial is validated on"),
    ("budget.macs", "choice(1000000, 2000000)", "is the budget every trial is held to"),
    ("space.width_step", "choice(4, 8)", "is the architecture space"),
    ("study.name", "a,b", "names the study"),
    ("search.n_trials", "range(1, 3)", "configures the search itself"),
]


@pytest.mark.parametrize("key, expression, message", BAD, ids=[f"{k}={e}" for k, e, _ in BAD])
def test_a_bad_entry_is_one_line_naming_key_and_expression(key: str, expression: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _parsed(key, expression)
    text = str(err.value)
    assert text.startswith(f"search.params.{key}={expression!r}: ") and message in text and "\n" not in text


def test_null_keeps_a_key_fixed_and_nested_keys_are_the_same_keys() -> None:
    cfg = Config(data=data_config("digits"))
    cfg.search.params = {**DEFAULT_PARAMS, "train.lr": None, "train": {"momentum": "interval(0.8, 0.9)"}}
    assert [p.key for p in parse_params(cfg)] == ["train.momentum", "train.weight_decay"]
    cfg.search.params = {
        "train.lr": "interval(0.1, 0.2)",
        "train": {"lr": "interval(0.3, 0.4)"},
    }  # the command line's nested form wins
    assert parse_params(cfg)[0].low == 0.3
    assert [p.key for p in parse_params(Config(data=data_config("digits")))] == [
        "train.lr",
        "train.weight_decay",
    ]  # the defaults of space.lr/weight_decay before
    assert parse_params(Config(data=data_config("digits")))[0] == SearchedParam(
        "train.lr", "float", low=0.01, high=0.2, log=True
    )


def test_bad_params_on_the_command_line_exit_2_and_write_nothing(tmp_path: Path) -> None:
    from search.apps.search import main

    proc = run_cli_in_process(
        main, ["data=synthetic", "+search.params={train.momentum:'interval(0.5, 1.5)'}"], tmp_path
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: search.params.train.momentum='interval(0.5, 1.5)': train.momentum=1.5: must be in [0, 1)"
    ]
    assert list(tmp_path.iterdir()) == []


def _cfg(**params: str | None) -> Config:
    return Config(
        search=SearchConfig(n_trials=4, pruner="none", n_startup_trials=2, params=params),
        data=data_config("synthetic", n_samples=160, channels=1),
        train=TrainConfig(epochs=1, batch_size=32),
        budget=BudgetConfig(macs=2_000_000, mode="project"),
        logger=LoggerConfig(name="none"),
        progress=False,
    )


THREE = {
    "train.batch_size": "choice(16, 32, 64)",
    "train.momentum": "interval(0.5, 0.95)",
    "train.schedule": "choice(paper, cosine)",
}


@pytest.mark.slow
def test_each_trial_trains_with_its_own_drawn_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[TrainConfig, bool]] = []
    real_fit = Trainer.fit

    def spy(self: Trainer, model, **kwargs):  # what the trainer that trains the network holds
        seen.append((self.cfg, self.augment))
        return real_fit(self, model, **kwargs)

    monkeypatch.setattr(Trainer, "fit", spy)
    cfg = _cfg(**THREE, **{"data.augment": "choice(true, false)"})
    study = run_study(cfg, "own", tmp_path).study
    trials = study.trials
    trained = [t for t in trials if t.user_attrs.get("epochs")]
    assert len(trained) == len(seen) == 4
    for t, (train, augment) in zip(trained, seen):
        values = t.user_attrs["hyperparameters"]
        assert set(values) == {*THREE, "data.augment"}
        assert (train.batch_size, train.momentum, train.schedule, augment) == tuple(
            values[k] for k in (*THREE, "data.augment")
        )
        if t.user_attrs.get("warm_start"):  # the hand design: its recipe, the configured values
            assert values == config_values(cfg, parse_params(cfg)) and t.params == {}
        else:
            assert values == {k: t.params[k] for k in values}  # drawn by Optuna under the config key
    assert len({tuple(sorted(t.user_attrs["hyperparameters"].items())) for t in trained}) > 1
    from search.reports.study import _importances

    assert {*THREE, "data.augment"} <= set(_importances(study))  # importances.png has a bar for each


@pytest.mark.slow
def test_a_study_resumes_only_under_the_same_params(tmp_path: Path) -> None:
    run_study(_cfg(**THREE), "resume", tmp_path)
    respaced = _cfg(**{**THREE, "train.momentum": "interval(0.5,0.95)"})  # the same sweep, written otherwise
    respaced.search.n_trials = 5
    after = run_study(respaced, "resume", tmp_path).study.trials
    assert sum(1 for t in after if t.user_attrs.get("epochs")) == 5
    changed = _cfg(**{**THREE, "train.momentum": "interval(0.5, 0.9)"})
    with pytest.raises(
        ConfigError,
        match=r"^search\.params\.train\.momentum='interval\(0\.5, 0\.9\)': "
        r"study 'resume' .* was run with 'interval\(0\.5, 0\.95\)'",
    ):
        run_study(changed, "resume", tmp_path)
    dropped = _cfg(**{k: v for k, v in THREE.items() if k != "train.schedule"})
    with pytest.raises(
        ConfigError, match=r"^search\.params\.train\.schedule=None: .* was run with 'choice\(paper, cosine\)'"
    ):
        run_study(dropped, "resume", tmp_path)
    assert len(optuna.load_study(study_name="resume", storage=f"sqlite:///{tmp_path / 'study.db'}").trials) == len(
        after
    )


def test_apply_values_copies_and_leaves_the_config_alone() -> None:
    cfg = Config(data=data_config("digits"))
    own = apply_values(cfg, {"train.lr": 0.3, "train.batch_size": 16, "data.augment": True})
    assert (own.train.lr, own.train.batch_size, own.data.augment) == (0.3, 16, True)
    assert (cfg.train.lr, cfg.train.batch_size, cfg.data.augment) == (0.05, 64, False)
    assert own.train.momentum == cfg.train.momentum and own.budget is cfg.budget


# lightning-hydra-template's configs/hparams_search/mnist_optuna.yaml, its sweeper block as written there.
LHT_MNIST = """\
hydra:
  sweeper:
    params:
      model.optimizer.lr: interval(0.0001, 0.1)
      data.batch_size: choice(32, 64, 128, 256)
      model.net.lin1_size: choice(64, 128, 256)
      model.net.lin2_size: choice(64, 128, 256)
      model.net.lin3_size: choice(32, 64, 128, 256)
"""
# The README's mapping of its keys: the optimiser's and the loader's are ours under train.*; the
# network's widths are what the architecture space searches already.
LHT_KEYS = {"model.optimizer.lr": "train.lr", "data.batch_size": "train.batch_size"}


def test_lightning_hydra_templates_mnist_block_runs_through_our_parser_and_study(tmp_path: Path) -> None:
    lht = yaml.safe_load(LHT_MNIST)["hydra"]["sweeper"]["params"]
    with pytest.raises(ConfigError, match="lightning-hydra-template's data.batch_size is train.batch_size here"):
        parse_params(_cfg(**lht))
    with pytest.raises(
        ConfigError,
        match=r"model.net.lin1_size='choice\(64, 128, 256\)': is lightning-hydra-template's network; "
        r"here the architecture is the space",
    ):
        parse_params(_cfg(**{"model.net.lin1_size": lht["model.net.lin1_size"]}))
    ours = {LHT_KEYS[k]: v for k, v in lht.items() if k in LHT_KEYS}
    cfg = _cfg(**ours, **{"train.weight_decay": None})
    assert parse_params(cfg) == (
        SearchedParam("train.batch_size", "choice", choices=(32, 64, 128, 256)),
        SearchedParam("train.lr", "float", low=0.0001, high=0.1),  # LHT's example: a linear interval
    )
    cfg.search.warm_start = False
    trials = run_study(cfg, "lht", tmp_path).study.trials
    for t in (t for t in trials if t.user_attrs.get("epochs")):
        assert t.distributions["train.lr"] == optuna.distributions.FloatDistribution(0.0001, 0.1)
        assert t.distributions["train.batch_size"] == optuna.distributions.CategoricalDistribution([32, 64, 128, 256])
    # and the learning rate on a log interval, as Optuna users usually write it
    log_lr = _cfg(**{**ours, "model.optimizer.lr": None, "train.lr": "tag(log, interval(0.0001, 0.1))"})
    log_lr.search.params.pop("model.optimizer.lr")
    assert parse_params(log_lr)[1] == SearchedParam("train.lr", "float", low=0.0001, high=0.1, log=True)


def test_the_shipped_hparams_search_file_composes_with_an_experiment_and_the_command_line(tmp_path: Path) -> None:
    cfg = precheck(["hparams_search=fashion-mnist"])
    assert cfg.study.name == "fashion-mnist-hparams" and cfg.search.n_trials == 30
    assert {p.key for p in parse_params(cfg)} == {
        "train.lr",
        "train.weight_decay",
        "train.batch_size",
        "train.momentum",
        "train.schedule",
    }
    both = precheck(
        ["experiment=search-cifar10", "hparams_search=fashion-mnist", f"data.path={tmp_path}", "search.n_trials=5"]
    )
    assert both.data.name == "cifar10" and both.budget.macs == 10_000_000 and both.train.epochs == 8  # the experiment's
    assert both.search.n_trials == 5 and both.study.name == "cifar10-hparams"  # the command line's, the hparams file's
    assert len(parse_params(both)) == 5
    with pytest.raises(
        ConfigError,
        match=r"^experiment=aux: an experiment of inception-ablate and inception-compare "
        r"\(it sets experiment.kind\), not of inception-search$",
    ):
        precheck(["experiment=aux"])
    from search.apps.cli import compose_checked

    with pytest.raises(
        ConfigError,
        match=r"^experiment=search-cifar10: an experiment of inception-search "
        r"\(it sets no experiment.kind\), not of inception-ablate$",
    ):
        compose_checked("ablate", ["experiment=search-cifar10"])


@pytest.mark.slow
def test_a_search_samples_three_training_keys_and_shows_them_everywhere(tmp_path: Path) -> None:
    """The shipped hparams_search file on synthetic data, through the CLI, as a multirun over
    another key: each job's study, W&B runs, trials.csv, report.md and best_hyperparameters.yaml."""
    with pytest.MonkeyPatch.context() as patch:  # a Hydra multirun in this process: its files are the subject
        patch.setenv("WANDB_MODE", "offline")
        args = [
            "-m",
            "data=synthetic",
            "data.n_samples=160",
            "hparams_search=fashion-mnist",
            "search.n_trials=3",
            "search.n_workers=1",
            "search.n_startup_trials=1",
            "train.epochs=1",
            # confirmation retrains the best with its own drawn settings: one network, one seed
            "search.confirm.top_k=1",
            "search.confirm.seeds=[1]",
            "search.confirm.epochs=1",
            "search.confirm.subset=null",
            "progress=false",
            "budget.macs=1500000,2000000",
        ]
        proc = run_cli_in_process(search_main, args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    searched = {"train.lr", "train.weight_decay", "train.batch_size", "train.momentum", "train.schedule"}
    jobs = sorted((tmp_path / "results" / "synthetic-hparams").glob("*/study.db"))
    assert len(jobs) == 2, list((tmp_path / "results").rglob("*"))
    for db in jobs:
        directory = db.parent
        (summary,) = optuna.get_all_study_summaries(f"sqlite:///{db}")
        study = optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{db}")
        assert set(study.user_attrs["identity"]["params"]) == searched
        trained = [t for t in study.trials if t.user_attrs.get("epochs")]
        assert len(trained) == 3
        runs = {r.name: r for r in read_runs(directory / "wandb")}
        with open(directory / "trials.csv") as trials_csv:
            rows = {int(r["number"]): r for r in csv.DictReader(trials_csv)}
        for t in trained:
            values = t.user_attrs["hyperparameters"]
            assert set(values) == searched
            if not t.user_attrs.get("warm_start"):
                assert {k: t.params[k] for k in searched} == values
            run = runs[f"trial-{t.number:04d}-{t.user_attrs['key']}"]
            assert run.config["hyperparameters"] == values
            assert {k: run.config["train"][k.removeprefix("train.")] for k in searched} == values
            assert run.config["searched"] == (
                {} if t.user_attrs.get("warm_start") else study.user_attrs["identity"]["params"]
            )
            for key in searched:
                assert rows[t.number][key] == str(values[key])
        report = (directory / "report.md").read_text()
        assert "- searched settings (search.params): train.batch_size: `choice(32, 64, 128)`" in report
        assert (
            "train.batch_size | train.lr | train.momentum | train.schedule | train.weight_decay" in report
        )  # top trials
        best = yaml.safe_load((directory / "best_hyperparameters.yaml").read_text())
        assert (
            set(best) == searched
            and f"the best trial's settings: `train.batch_size={best['train.batch_size']}" in report
        )
