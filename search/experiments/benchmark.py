"""`python -m search.apps.benchmark [size=quick|default|full]`: does the search find better networks?

The protocol of ../shared/BENCHMARKING.md (after Lindauer & Hutter, JMLR 2020), for one task and
one budget:

1. `benchmark.repeats` independent searches per method (random search always among them), same
   space, same trial budget (`benchmark.n_trials` trained networks), same training pipeline;
   each is an ordinary study under `searches/<method>-r<repeat>/`, so an interrupted benchmark
   resumes where it stopped.
2. Anytime curves: best validation accuracy against cumulative training seconds (pre-screen
   seconds included), median and inter-quartile band over the repeats.
3. Every repeat's best (the study's best as the main job names it: confirmed at the higher
   fidelity when `search.confirm` is on) and the hand design (the base projected onto the
   budget), all width-matched to `budget.macs`, retrained from scratch with `benchmark.seeds`
   seeds and tested once on the official test set: each method has one retrained network per
   repeat, and a method is compared with the baseline pair by pair (repeat r's best of each,
   both trained with seed s). Each (arm, seed) result is one JSON file under `retrain/`, keyed by
   genotype, hyperparameters, training, data and seed, so nothing finished is retrained.
4. summary.csv, report.md, anytime.png, test_accuracy.png; W&B runs grouped by the benchmark.

Every method retrains its network with the settings its best trial drew (`search.params`: by
default learning rate and weight decay); the hand design keeps its recipe, the configured values.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import optuna

from search.config.benchmark import (
    HAND_DESIGN,
    BenchmarkConfig,
    MethodConfig,
    method_configs,
)
from search.config.params import apply_values, config_values, parse_params
from search.config.schema import (
    Config,
    ConfigError,
    DataConfig,
    StudyConfig,
    TrainConfig,
    ranges_from_config,
)
from search.data.sources import load_data
from search.data.splits import Splits, base_genotype
from search.experiments.run import run_study
from search.optimize.first_trials import warm_start_genotype
from search.optimize.results import best_trial
from search.optimize.status import Status
from search.optimize.storage import storage_url
from search.reports.benchmark import write_benchmark_report
from search.training import interrupt
from search.training.network import run_key, train_network
from search.training.tracking import Tracker
from search.training.trainer import Trainer, thread_share
from space.ablations import match_budget
from space.accounting import cost
from space.genotype import Genotype
from space.io import atomic_path

__all__ = ["HAND_DESIGN", "Arm", "run_benchmark", "search_config"]

log = logging.getLogger(__name__)

_DATA: dict[str, Splits] = {}  # per process: data sets loaded once, by their config


@dataclasses.dataclass(frozen=True)
class Arm:
    """One network to retrain: a repeat's best genotype, or the hand design."""

    name: str  # the method, or HAND_DESIGN
    repeat: int | None  # the search it came from (None: the hand design)
    genotype: Genotype
    hyperparameters: dict[str, Any]  # the values of the searched keys it trains with ({"train.lr": ...})
    source: str  # where it came from: "<method>-r<repeat> trial <n>", or the base

    @property
    def label(self) -> str:
        return self.name.replace(" ", "-") + ("" if self.repeat is None else f"-r{self.repeat}")


def search_config(cfg: BenchmarkConfig, method: str, m: MethodConfig, repeat: int, directory: Path) -> Config:
    """The study config of one search: the shared pipeline with the method's settings."""
    search = dataclasses.replace(
        cfg.search,
        sampler=m.sampler,
        pruner=m.pruner,
        warm_start=m.warm_start,
        prescreen=m.prescreen,
        n_trials=cfg.benchmark.n_trials if m.n_trials is None else m.n_trials,
        budget_seconds=cfg.search.budget_seconds if m.budget_seconds is None else m.budget_seconds,
        seed=repeat,
        n_workers=1,
        worker=0,
        storage=None,
        strategy=m.strategy,
        train_top_k=cfg.search.train_top_k if m.train_top_k is None else m.train_top_k,
    )
    return Config(
        supernet=dataclasses.replace(cfg.supernet, seed=repeat),  # each repeat's own supernet: independent searches
        space=dataclasses.replace(cfg.space, share=m.share),
        budget=cfg.budget,
        search=search,
        data=cfg.data,
        study=StudyConfig(name=f"{method}-r{repeat}", results_dir=str(directory / "searches")),
        train=dataclasses.replace(cfg.train, threads=thread_share(cfg.train, cfg.benchmark.jobs)),
        logger=dataclasses.replace(cfg.logger, group=f"benchmark-{cfg.benchmark.name}"),
        progress=False,
    )


def _run_search(job: tuple[Config, str]) -> str:
    cfg, directory = job
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    result = run_study(cfg, cfg.study.name, Path(directory))
    best = f"{result.best_trial.value:.4f}" if result.best_trial is not None else "-"
    return f"search {cfg.study.name}: best val {best} ({time.perf_counter() - start:.0f} s)"


def run_searches(cfg: BenchmarkConfig, directory: Path) -> dict[str, list[optuna.Study]]:
    """Every (method, repeat) search to its end (finished ones only reload); the studies."""
    configs = {
        method: [search_config(cfg, method, m, r, directory) for r in range(cfg.benchmark.repeats)]
        for method, m in method_configs(cfg.benchmark).items()
    }
    # Repeat by repeat, every method in each round: whatever else loads the machine meanwhile
    # slows all methods alike, so the anytime curves' seconds stay comparable.
    jobs = [
        (cs[r], str(directory / "searches" / cs[r].study.name))
        for r in range(cfg.benchmark.repeats)
        for cs in configs.values()
    ]
    with interrupt.process_pool(cfg.benchmark.jobs) as pool:
        for i, line in enumerate(pool.map(_run_search, jobs), 1):
            print(f"[{i}/{len(jobs)}] {line}", flush=True)
    return {
        method: [
            optuna.load_study(study_name=c.study.name, storage=storage_url(c, directory / "searches" / c.study.name))
            for c in cs
        ]
        for method, cs in configs.items()
    }


def arms(cfg: BenchmarkConfig, studies: dict[str, list[optuna.Study]], base: Genotype) -> list[Arm]:
    """The hand design and every repeat's best, width-matched to the budget."""
    divisor = ranges_from_config(cfg.space).width_step
    hand = warm_start_genotype(cfg, base)
    if hand is None:
        raise ConfigError(f"budget.macs={cfg.budget.macs}: the base {cfg.space.base} cannot be scaled into it")
    recipe = config_values(cfg, parse_params(cfg))
    found = [Arm(HAND_DESIGN, None, hand, recipe, f"{cfg.space.base} projected onto the budget")]
    for method, runs in studies.items():
        for repeat, study in enumerate(runs):
            best = best_trial(study)
            if best is None:
                log.warning("search %s trained no network: nothing to retrain", study.study_name)
                continue
            genotype = Genotype.from_dict(best.user_attrs["genotype"])
            source = f"{study.study_name} trial {best.number}"
            found.append(Arm(method, repeat, genotype, best.user_attrs["hyperparameters"], source))
    matched = []
    for arm in found:
        try:
            genotype = match_budget(arm.genotype, cfg.budget.macs, divisor=divisor)
        except ValueError as err:
            log.warning("%s: %s; retrained at %d MACs", arm.label, err, cost(arm.genotype).macs)
            genotype = arm.genotype
        matched.append(dataclasses.replace(arm, genotype=genotype))
    return matched


def retrain_configs(cfg: BenchmarkConfig) -> tuple[TrainConfig, DataConfig]:
    b = cfg.benchmark
    train = dataclasses.replace(cfg.train, epochs=b.retrain_epochs, threads=thread_share(cfg.train, cfg.benchmark.jobs))
    return train, dataclasses.replace(cfg.data, subset=b.retrain_subset)


def _retrain(job: tuple[Arm, int, TrainConfig, DataConfig, Any, str]) -> dict[str, Any]:
    """One arm, one seed: trained from scratch, tested once on the test split."""
    arm, seed, train, data_cfg, logger, group = job
    key = json.dumps(dataclasses.asdict(data_cfg), sort_keys=True)
    if key not in _DATA:
        _DATA[key] = load_data(data_cfg)
    # The arm's searched values over the retraining recipe, whose epochs and subset stay.
    values = {k: v for k, v in arm.hyperparameters.items() if k != "train.epochs"}
    own = apply_values(Config(train=dataclasses.replace(train, seed=seed), data=data_cfg), values)
    train = own.train
    trainer = Trainer(train, _DATA[key], augment=data_cfg.augment).configured(train, own.data)
    c = cost(arm.genotype)
    run = Tracker(logger, study=group, directory=Path(logger.dir or ".")).start(
        name=f"{arm.label}-s{seed}",
        config={
            "arm": arm.name,
            "repeat": arm.repeat,
            "seed": seed,
            "genotype": arm.genotype.to_dict(),
            "genotype_key": arm.genotype.key,
            "train": dataclasses.asdict(train),
            "hyperparameters": arm.hyperparameters,
            "macs": c.macs,
        },
    )
    record: dict[str, Any] = {
        "arm": arm.name,
        "repeat": arm.repeat,
        "seed": seed,
        "key": arm.genotype.key,
        "macs": c.macs,
        "params": c.params,
        "hyperparameters": arm.hyperparameters,
        "source": arm.source,
    }
    with run.preempted_on_stop():
        trained = train_network(arm.genotype, trainer, seed=seed, on_epoch=lambda r: run.log(r.metrics(), step=r.epoch))
    if trained.fail_reason is not None:
        run.finish({"state": str(Status.FAILED), "fail_reason": trained.fail_reason}, failed=True)
        failed = {"state": str(Status.FAILED), "fail_reason": trained.fail_reason}
        return {**record, **failed, "val_accuracy": None, "test_accuracy": None}
    record |= {
        "state": str(Status.COMPLETE),
        "val_accuracy": trained.val_accuracy,
        "test_accuracy": trainer.evaluate(trained.model, "test"),
        "train_seconds": trained.seconds,
    }
    run.finish(record)
    return record


def _run_file(arm: Arm, seed: int, train: TrainConfig, data: DataConfig) -> str:
    key = run_key(arm.genotype, train, data, seed, hyperparameters=arm.hyperparameters)
    return f"{arm.label}--s{seed}--{key}.json"


def run_retraining(cfg: BenchmarkConfig, found: list[Arm], directory: Path) -> list[dict[str, Any]]:
    """Every (arm, seed) not already stored; all stored records."""
    train, data = retrain_configs(cfg)
    runs = directory / "retrain"
    runs.mkdir(parents=True, exist_ok=True)
    logger = dataclasses.replace(cfg.logger, dir=cfg.logger.dir or str(directory), group=None)
    seeds = range(cfg.benchmark.retrain_seed, cfg.benchmark.retrain_seed + cfg.benchmark.seeds)
    paths = {(arm.label, seed): runs / _run_file(arm, seed, train, data) for arm in found for seed in seeds}
    group = f"benchmark-{cfg.benchmark.name}"
    todo = [
        (arm, seed, train, data, logger, group)
        for arm in found
        for seed in seeds
        if not paths[arm.label, seed].is_file()
    ]
    print(f"retraining: {len(paths) - len(todo)} of {len(paths)} runs cached", flush=True)
    with interrupt.process_pool(cfg.benchmark.jobs) as pool:
        for i, ((arm, *_), record) in enumerate(zip(todo, pool.map(_retrain, todo)), 1):
            with atomic_path(paths[arm.label, record["seed"]]) as tmp:
                tmp.write_text(json.dumps(record, indent=1))
            test = f"test {record['test_accuracy']:.4f}" if record["test_accuracy"] is not None else record["state"]
            print(f"[{i}/{len(todo)}] retrain {arm.label} seed {record['seed']}: {test}", flush=True)
    return [json.loads(p.read_text()) for p in paths.values()]


def run_benchmark(cfg: BenchmarkConfig, directory: Path) -> dict[str, Any]:
    """The whole protocol; returns what the report states (also written to report.md)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = load_data(cfg.data)  # fail here, once, on a bad data path
    base = base_genotype(cfg.space.base, cfg.space.genotype, data)
    studies = run_searches(cfg, directory)
    records = run_retraining(cfg, arms(cfg, studies, base), directory)
    return write_benchmark_report(cfg, studies, records, directory)
