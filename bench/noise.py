"""How noisy is the search's objective? Seed-to-seed and search-to-confirmation Kendall tau.

    python bench/noise.py [--networks 16] [--jobs 2] [override ...]
    python bench/noise.py --networks 3 data=digits data.subset=null train.epochs=1 ...   # tiny mode

The main job's config (conf/search.yaml, with Hydra overrides such as `data.val_size=null` to
measure another setting). `--networks` random networks of its space, drawn as random search
draws them (architecture and searched settings) and projected onto the budget, are each trained
with two seeds (train.seed and train.seed + 1) at the search's fidelity and once at the
confirmation fidelity (search.confirm: its epochs, training images and first seed). Prints the
Kendall tau between the two seeds (validation split and official test split), between the
search's value and the higher fidelity's test accuracy (one seed, and the mean of two), one
run's standard deviation, the spread between networks, and the seconds: per network at each
fidelity, and the share of them that evaluation takes. Trainings run in `--jobs` processes of
one thread each (BENCHMARKING.md: measure noise before tuning a sampler).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import torch
from scipy.stats import kendalltau

from search.apps.search import precheck
from search.budget.constraints import as_trained
from search.config.params import apply_values, parse_params
from search.config.schema import Config, ranges_from_config
from search.data.sources import load_data, register
from search.data.splits import Splits, base_genotype
from search.optimize.confirm import confirmation_config
from search.optimize.sample import sample_trial
from search.training.network import train_network
from search.training.trainer import Trainer
from space.genotype import Genotype
from space.ranges import RandomDraw

_DATA: dict[str, Splits] = {}


def _networks(cfg: Config, n: int) -> list[tuple[Genotype, dict[str, Any]]]:
    """`n` distinct random networks of the space with their drawn settings, as trained."""
    data = load_data(cfg.data)
    base = base_genotype(cfg.space.base, cfg.space.genotype, data)
    ranges, params = ranges_from_config(cfg.space), parse_params(cfg)
    found: list[tuple[Genotype, dict[str, Any]]] = []
    seed = 0
    while len(found) < n:
        genotype, values = sample_trial(RandomDraw(seed), ranges=ranges, base=base, params=params)
        seed += 1
        trained = as_trained(genotype, cfg.budget, divisor=ranges.width_step)
        if trained is not None and trained[0].key not in {g.key for g, _ in found}:
            found.append((trained[0], values))
    return found


def _timed_eval(trainer: Trainer, model: torch.nn.Module, limit: int | None) -> float:
    start = time.perf_counter()
    trainer.evaluate(model, "val", limit=limit)
    return time.perf_counter() - start


def _train(job: tuple[Config, Genotype, dict[str, Any], int]) -> dict[str, float]:
    """One network at one fidelity and seed: its validation and test accuracy and seconds."""
    cfg, genotype, values, seed = job
    torch.set_num_threads(1)
    own = apply_values(cfg, values)
    train = dataclasses.replace(own.train, seed=seed, threads=1)
    key = repr(own.data)
    if key not in _DATA:
        _DATA[key] = load_data(own.data)
    trainer = Trainer(train, _DATA[key], augment=own.data.augment, val_epoch_size=own.data.val_epoch_size)
    trained = train_network(genotype, trainer, seed=seed)
    if trained.model is None:
        return {"val": math.nan, "test": math.nan, "seconds": trained.seconds, "eval_seconds": 0.0}
    model = trainer.prepare(trained.model)
    epochs = train.epochs  # what evaluation cost inside the fit: every epoch but the last on a prefix
    evaluation = (epochs - 1) * _timed_eval(trainer, model, own.data.val_epoch_size) + _timed_eval(trainer, model, None)
    return {
        "val": trained.val_accuracy or math.nan,
        "test": trainer.evaluate(model, "test"),
        "seconds": trained.seconds,
        "eval_seconds": evaluation,
    }


def _tau(a: list[float], b: list[float]) -> float:
    return float(kendalltau(a, b).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the main job's config")
    args = parser.parse_args()
    register()  # the schemas Hydra composes the main job's config into
    with tempfile.TemporaryDirectory() as tmp:
        cfg = precheck([*args.overrides, f"study.results_dir={tmp}", "logger=none"])
    high = confirmation_config(cfg)
    seeds = (cfg.train.seed, cfg.train.seed + 1)
    networks = _networks(cfg, args.networks)
    jobs = [(cfg, g, v, s) for g, v in networks for s in seeds] + [
        (high, g, v, cfg.search.confirm.seeds[0]) for g, v in networks
    ]
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_train, jobs))
    n = len(networks)
    a, b, confirmed = results[0 : 2 * n : 2], results[1 : 2 * n : 2], results[2 * n :]
    val_a, val_b = [r["val"] for r in a], [r["val"] for r in b]
    mean_val = [(x + y) / 2 for x, y in zip(val_a, val_b)]
    high_test = [r["test"] for r in confirmed]
    one_run_sd = statistics.stdev([100 * (x - y) for x, y in zip(val_a, val_b)]) / math.sqrt(2)
    search_seconds = statistics.median(r["seconds"] for r in a + b)
    eval_share = statistics.median(r["eval_seconds"] / r["seconds"] for r in a + b)
    d = cfg.data
    print(
        f"{n} random networks, {cfg.budget.macs:,} MACs ({cfg.budget.mode}); search fidelity: {cfg.train.epochs} "
        f"epochs, data.subset={d.subset}, data.val_size={d.val_size} (per-epoch: {d.val_epoch_size}), "
        f"schedule {cfg.train.schedule}, seeds {seeds}; confirmation: {high.train.epochs} epochs, "
        f"data.subset={high.data.subset}, seed {cfg.search.confirm.seeds[0]}"
    )
    print("| Kendall tau between ... | value |")
    print("|---|---|")
    print(f"| seed {seeds[0]} and seed {seeds[1]}, on the validation split | {_tau(val_a, val_b):.2f} |")
    test_a, test_b = [r["test"] for r in a], [r["test"] for r in b]
    print(f"| seed {seeds[0]} and seed {seeds[1]}, on the official test split | {_tau(test_a, test_b):.2f} |")
    print(f"| the search's objective (one seed) and the confirmation's test accuracy | {_tau(val_a, high_test):.2f} |")
    print(f"| the mean of two seeds and the confirmation's test accuracy | {_tau(mean_val, high_test):.2f} |")
    print(f"one run's standard deviation: {one_run_sd:.2f} points")
    print(f"spread between networks (sd of the two seeds' mean): {100 * statistics.stdev(mean_val):.2f} points")
    print(f"confirmation test accuracies: {min(high_test):.4f}-{max(high_test):.4f}")
    print(
        f"seconds per network (1 thread): {search_seconds:.1f} at the search's fidelity "
        f"(evaluation {100 * eval_share:.0f}% of it), {statistics.median(r['seconds'] for r in confirmed):.1f} "
        "at the confirmation's"
    )


if __name__ == "__main__":
    main()
