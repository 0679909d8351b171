"""Every config group composes; bad input is one line naming the field and value, exit 2."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from search.apps.search import precheck
from search.config.schema import Config, ConfigError
from search.data.sources import register
from tests.search.conftest import run_search, run_search_in_process

register()


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["data=synthetic", "logger=none"],
        ["data=cifar10", "data.path=/somewhere"],
        ["data=npz", "data.path=x.npz"],
        ["search.sampler=random", "search.pruner=hyperband", "budget.mode=project"],
        ["search.sampler=nsga2", "search.pruner=none", "search.seed=3", "study.name=x"],
        ["search.sampler=gp", "search.storage=sqlite:///x.db", "train.epochs=3", "budget.macs=1000000"],
        ["train.lr=0.01,0.1"],  # a multirun sweep: the first value is checked
        ["budget.params=100000", "train.schedule=cosine", "logger.mode=online"],
    ],
)
def test_configs_compose_into_the_schema(overrides: list[str]) -> None:
    cfg = precheck(overrides)
    assert isinstance(cfg, Config)


def test_defaults_are_the_main_job() -> None:
    cfg = precheck([])
    assert cfg.data.name == "fashion-mnist" and cfg.study.name == "fashion-mnist"
    assert (cfg.data.subset, cfg.data.val_size, cfg.data.val_epoch_size) == (4800, 5000, 1200)  # conf/search_data
    assert cfg.search.confirm.top_k == 3 and cfg.train.epochs == 3
    assert cfg.logger.name == "wandb" and cfg.logger.mode == "offline"
    assert (
        cfg.search.sampler == "tpe"
        and cfg.search.warm_start
        and cfg.budget.mode == "project"
        and cfg.train.schedule == "cosine"
    )
    digits = precheck(["data=digits"])
    assert digits.study.name == "digits" and digits.data.val_size is None  # the main job's split sizes are its data's


BAD = [
    (["train.epochs=0"], "train.epochs=0: must be > 0"),
    (["train.epochs=-3"], "train.epochs=-3"),
    (["train.epoch=3"], "train.epoch"),
    (["budget.macs=lots"], "budget.macs"),
    (
        ["search.sampler=cmaes"],
        "search.sampler='cmaes': must be one of tpe, random, nsga2, gp, evolution, tpe-multivariate",
    ),
    (["space.share=layer"], "space.share='layer': must be one of module, stage"),
    (
        ["search.sampler=evolution", "search.tournament=20"],
        "search.tournament=20: must be in [1, search.population=10]",
    ),
    (["search.pruner=sometimes"], "search.pruner='sometimes'"),
    (["search.n_trials=0"], "search.n_trials=0"),
    (["search.budget_seconds=0"], "search.budget_seconds=0.0: must be > 0"),
    (["budget.mode=scale"], "budget.mode='scale'"),
    (["budget.min_fraction=1.5"], "budget.min_fraction=1.5"),
    (["data=cifar10"], "data.path=None: data=cifar10 needs data.path=<folder>"),
    (["data=imagenet"], "imagenet"),
    (["logger=tensorboard"], "tensorboard"),
    (["space.base=resnet50"], "space.base='resnet50'"),
    (["space.lr=[0.1,0.01]"], "space.lr: no such key; a searched train.lr is an entry of search.params now"),
    (
        ["search.params={train.lr:'interval(0.1,1'}"],
        "search.params.train.lr='interval(0.1,1': not a Hydra sweep expression",
    ),
    (
        ["+search.params={train.momentum:'interval(0.5, 1.5)'}"],
        "search.params.train.momentum='interval(0.5, 1.5)': train.momentum=1.5: must be in [0, 1)",
    ),
    (
        ["+search.params={budget.macs:'choice(1e6, 2e6)'}"],
        "search.params.budget.macs='choice(1e6, 2e6)': is the budget every trial is held to",
    ),
    (["+search.params.train.epochs=range(1,3)"], "search.params.train.epochs"),
    (["space.large_kinds=[7x7]"], "space.large_kinds=['7x7']: choose from 5x5, 3x3x2, 3x3"),
    (["data=digits", "data.val_fraction=0.6", "data.test_fraction=0.5"], "data.test_fraction=0.5"),
    (["data.test_fraction=0.5"], "data.test_fraction: not a field of data=fashion-mnist"),
    (["data.name=npz"], "data.name='npz': choose the source with data=npz"),
    (["train.device=tpu"], "train.device='tpu'"),
    (["study.name=a/b"], "study.name='a/b'"),
]


@pytest.mark.parametrize("overrides, message", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_config_is_one_line_naming_the_field(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        precheck(overrides)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def _assert_one_line_error(proc, message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and message in lines[0], proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("overrides, message", [BAD[0], BAD[2], BAD[9]])
def test_cli_exits_2_with_one_line(overrides: list[str], message: str, tmp_path: Path) -> None:
    _assert_one_line_error(run_search_in_process(overrides, tmp_path, check=False), message)


def test_missing_and_corrupt_data_files(tmp_path: Path) -> None:
    common = ["data=npz", "logger=none", "progress=false"]
    proc = run_search_in_process([*common, f"data.path={tmp_path / 'absent.npz'}"], tmp_path, check=False)
    _assert_one_line_error(proc, "data.path=")
    assert "no such file" in proc.stderr
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file at all")
    proc = run_search_in_process([*common, f"data.path={corrupt}"], tmp_path, check=False)
    _assert_one_line_error(proc, "not a readable .npz")


@pytest.mark.slow
def test_bad_storage_url_and_changed_study_keep_stored_results(tmp_path: Path) -> None:
    proc = run_search_in_process(["logger=none", "search.storage=nosuchdb://x/y"], tmp_path, check=False)
    _assert_one_line_error(proc, "search.storage='nosuchdb://x/y': cannot be opened")
    images = np.random.default_rng(0).normal(size=(60, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "d.npz", images=images, labels=np.arange(60) % 3)
    common = [
        "data=npz",
        f"data.path={tmp_path / 'd.npz'}",
        "logger=none",
        "progress=false",
        "train.epochs=1",
        "search.n_trials=2",
        "study.name=keep",
        "budget.macs=1000000000",
    ]
    # Real processes: a stored study's file is compared byte for byte, and a study run in this
    # process may still hold its storage's connection when the bytes are read.
    run_search(common, tmp_path)
    db = tmp_path / "results" / "keep" / "study.db"
    before = db.read_bytes()
    proc = run_search([*common, "budget.macs=5000000"], tmp_path, check=False)
    _assert_one_line_error(proc, "budget.macs=5000000: study 'keep'")
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["space.width_step=0"], "space.width_step=0: must be positive"),
        (["space.width_scale=[2.0,1.0]"], "space.width_scale=[2.0, 1.0]"),
        (["space.modules_per_stage=[[1,2]]"], "space.modules_per_stage"),
        (["+space.genotype.num_classes=5"], "space.genotype.num_classes=5: is set by the data"),
        (["train.momentum=-0.5"], "train.momentum=-0.5"),
        (["train.device=cuda:7"], "train.device='cuda:7'"),
    ],
)
def test_space_and_train_values_are_checked_before_any_study_opens(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("+", r"\+")):
        precheck(overrides)


def test_unwritable_results_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="study.results_dir=.*not writable"):
        precheck([f"study.results_dir={blocker / 'results'}"])


@pytest.mark.parametrize("config_name", ["search", "ablate", "compare"])
def test_hydra_excludes_exactly_the_execution_only_training_fields(config_name: str) -> None:
    """Multirun jobs that differ only in keys Hydra leaves out of the folder name must also be
    one study (or share cached ablation runs): the train.* keys in `exclude_keys` are the fields
    that study identities and run cache keys leave out, no more and no fewer."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from search.apps.cli import CONF_DIR
    from search.config.ablate import register_ablate
    from search.config.schema import EXECUTION_FIELDS, TrainConfig, training_identity

    register_ablate()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        composed = compose(config_name, return_hydra_config=True)
    GlobalHydra.instance().clear()
    excluded = list(composed.hydra.job.config.override_dirname.exclude_keys)
    train_keys = {key.removeprefix("train.") for key in excluded if key.startswith("train.")}
    assert train_keys == set(EXECUTION_FIELDS)
    assert set(training_identity(TrainConfig())) == {f.name for f in fields(TrainConfig)} - train_keys
    assert "train" not in excluded  # the training setup itself defines a study


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["train.epochs=2", "search.confirm.top_k=1", "search.confirm.epochs=1"],
            "search.confirm.epochs=1: below train.epochs=2: confirmation cannot be a lower fidelity",
        ),
        (
            ["data.subset=4800", "search.confirm.top_k=1", "search.confirm.subset=3000"],
            "search.confirm.subset=3000: below data.subset=4800, the search's images",
        ),
    ],
)
def test_confirmation_cannot_be_a_lower_fidelity(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        precheck(overrides)
    precheck([*overrides, "search.confirm.top_k=0"])  # no confirmation: nothing to compare


def test_a_confirmation_subset_below_all_images_is_refused_once_they_are_loaded() -> None:
    from search.data.sources import data_config, load_data
    from search.optimize.confirm import check_fidelity

    cfg = Config(data=data_config("synthetic", n_samples=200))
    cfg.search.confirm.top_k = 1
    data = load_data(cfg.data)
    pool = len(data.train) + len(data.val)  # what the search's training and validation images come from
    cfg.search.confirm.subset = pool - 1
    with pytest.raises(ConfigError, match=re.escape(f"search.confirm.subset={pool - 1}: below the search's {pool}")):
        check_fidelity(cfg, data)
    cfg.search.confirm.subset = pool
    check_fidelity(cfg, data)  # all of them: the same fidelity
