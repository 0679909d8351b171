"""How well does the supernet rank networks, and how fast does it score them?

    python bench/supernet.py [--networks 30] [--spaces module stage] [--jobs 2] [lever flags] [override ...]
    python bench/supernet.py --networks 3 --epochs 1 data=digits ...   # tiny mode

The main job's config (conf/search.yaml, with Hydra overrides). For each design space: the
supernet of the main job's data and budget is trained (or found in `--cache`, as
`inception-supernet` would; `supernet.*` levers below), `--networks` random networks of the
space, projected onto the budget as the main job trains them, are scored through it (batch norm
recalibrated, whole validation split), and each is trained on its own with two seeds
(train.seed, train.seed + 1) at the search's fidelity and once at the confirmation's
(search.confirm: its epochs, images and first seed); stand-alone results are kept in
`--cache`/standalone.json, so another lever trains only a supernet. Prints, per space: Kendall
tau between the supernet's score and the stand-alone value (search fidelity, mean of two seeds;
and the confirmation's test accuracy), the stand-alone seed-to-seed tau, each with a bootstrap
95% interval over the networks; whether the supernet's top 5 holds the stand-alone best; the
supernet's training seconds in stand-alone trials; candidates scored per second against one
stand-alone trial (BENCHMARKING.md: a ranking is only as good as its noise floor).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from scipy.stats import kendalltau

from search.apps.search import precheck
from search.budget.constraints import as_trained
from search.config.schema import Config, SupernetSettings, ranges_from_config
from search.data.sources import load_data, register
from search.data.splits import Splits, base_genotype
from search.experiments.supernet import train_supernet
from search.optimize.confirm import confirmation_config
from search.training.interrupt import process_pool
from search.training.network import train_network
from search.training.supernet import score
from search.training.trainer import Trainer
from space.genotype import Genotype
from space.ranges import RandomDraw, sample

_DATA: dict[str, Splits] = {}
TOP = 5


def _data(cfg: Config) -> Splits:
    key = repr(cfg.data)
    if key not in _DATA:
        _DATA[key] = load_data(cfg.data)
    return _DATA[key]


def _networks(cfg: Config, n: int) -> list[Genotype]:
    """`n` distinct random networks of the space, projected onto the budget as the main job
    trains them (its configured hyperparameters: the supernet ranks architectures)."""
    data = _data(cfg)
    base = base_genotype(cfg.space.base, cfg.space.genotype, data)
    ranges = ranges_from_config(cfg.space)
    found: dict[str, Genotype] = {}
    seed = 0
    while len(found) < n:
        trained = as_trained(sample(RandomDraw(seed), ranges, base), cfg.budget, divisor=ranges.width_step)
        seed += 1
        if trained is not None:
            found.setdefault(trained[0].key, trained[0])
    return list(found.values())


def _standalone(job: tuple[Config, dict[str, Any], int]) -> dict[str, float]:
    """One network trained on its own at one fidelity and seed: validation and test accuracy, seconds."""
    cfg, genotype, seed = job
    torch.set_num_threads(1)
    train = dataclasses.replace(cfg.train, seed=seed, threads=1)
    data = _data(cfg)
    trainer = Trainer(train, data, augment=cfg.data.augment, val_epoch_size=cfg.data.val_epoch_size)
    trained = train_network(Genotype.from_dict(genotype), trainer, seed=seed)
    if trained.model is None:
        return {"val": math.nan, "test": math.nan, "seconds": trained.seconds}
    test = trainer.evaluate(trainer.prepare(trained.model), "test")
    return {"val": trained.val_accuracy or math.nan, "test": test, "seconds": trained.seconds}


def _tau(a: list[float], b: list[float]) -> float:
    return float(kendalltau(a, b).statistic)


def _tau_interval(a: list[float], b: list[float], resamples: int = 2000) -> str:
    """Kendall tau with a bootstrap 95% interval over the networks (percentile method)."""
    rng = random.Random(0)
    n, taus = len(a), []
    for _ in range(resamples):
        pick = [rng.randrange(n) for _ in range(n)]
        value = _tau([a[i] for i in pick], [b[i] for i in pick])
        if not math.isnan(value):
            taus.append(value)
    taus.sort()
    low, high = (taus[int(q * (len(taus) - 1))] for q in (0.025, 0.975)) if taus else (math.nan, math.nan)
    return f"{_tau(a, b):.2f} [{low:.2f}, {high:.2f}]"


def _standalone_runs(
    cfg: Config, networks: list[Genotype], jobs: int, cache: Path
) -> dict[str, list[dict[str, float]]]:
    """Per network: seed A and seed B at the search's fidelity, then the confirmation run."""
    high = confirmation_config(cfg)
    fidelities = [(cfg, cfg.train.seed), (cfg, cfg.train.seed + 1), (high, cfg.search.confirm.seeds[0])]
    path = cache / "standalone.json"
    stored: dict[str, dict[str, float]] = json.loads(path.read_text()) if path.is_file() else {}

    def name(c: Config, g: Genotype, seed: int) -> str:
        return f"{g.key}|{c.train.epochs}|{c.data.subset}|{c.data.val_size}|{c.train.schedule}|{c.budget.macs}|{seed}"

    todo = [(c, g, s) for g in networks for c, s in fidelities if name(c, g, s) not in stored]
    with process_pool(jobs) as pool:  # one job: in this process, nothing spawned
        for (c, g, s), result in zip(todo, pool.map(_standalone, [(c, g.to_dict(), s) for c, g, s in todo])):
            stored[name(c, g, s)] = result
            path.write_text(json.dumps(stored, indent=1))  # a stopped run keeps what finished
    return {g.key: [stored[name(c, g, s)] for c, s in fidelities] for g in networks}


def _supernet_config(cfg: Config, args: argparse.Namespace, cache: Path) -> Config:
    settings = SupernetSettings(
        budgets=list(args.budgets),
        epochs=args.epochs,
        random_subnets=args.random_subnets,
        distill=args.distill,
        sort_channels=args.sort_channels,
        calibration_batches=args.calibration_batches,
        calibration_batch_size=args.calibration_batch_size,
        probes=0,
    )
    own = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(Config)}
    own["study"] = dataclasses.replace(cfg.study, results_dir=str(cache))
    own["supernet"] = settings
    return Config(**own)


def _space(cfg: Config, share: str, args: argparse.Namespace, cache: Path) -> None:
    cfg = dataclasses.replace(cfg, space=dataclasses.replace(cfg.space, share=share))
    networks = _networks(cfg, args.networks)
    runs = _standalone_runs(cfg, networks, args.jobs, cache)
    torch.set_num_threads(args.threads)
    sn_cfg = _supernet_config(cfg, args, cache)
    trained = train_supernet(sn_cfg, _data(cfg))
    calibration = trained.calibration(sn_cfg)
    start = time.perf_counter()
    scores = [score(trained.supernet, g, trained.trainer, calibration, limit=args.score_images) for g in networks]
    per_candidate = (time.perf_counter() - start) / len(networks)
    how = "found in the cache" if trained.cached else "trained"
    print(f"\n## space.share={share}: {len(networks)} networks, supernet {trained.key} ({how})")
    _ranking(cfg, [runs[g.key] for g in networks], scores)
    trial = statistics.median(r["seconds"] for g in networks for r in runs[g.key][:2])
    print(
        f"supernet training: {trained.seconds:.0f} s on {args.threads} thread(s) = "
        f"{trained.seconds * args.threads / trial:.1f} stand-alone trials ({trial:.1f} s each on 1 thread), "
        "in core-seconds"
    )
    rate, trials = 1 / per_candidate, args.threads / trial
    print(
        f"scoring: {per_candidate:.3f} s per candidate on {args.threads} thread(s), {rate:.2f} candidates/s; "
        f"stand-alone trials at {trials:.3f}/s on the same {args.threads} thread(s) (1 thread each): "
        f"{rate / trials:.0f}x the candidates per second"
    )


def _ranking(cfg: Config, runs: list[list[dict[str, float]]], scores: list[float]) -> None:
    a, b = [r[0]["val"] for r in runs], [r[1]["val"] for r in runs]
    mean = [(x + y) / 2 for x, y in zip(a, b)]
    confirmed = [r[2]["test"] for r in runs]
    best = max(range(len(runs)), key=lambda i: mean[i])
    top = sorted(range(len(runs)), key=lambda i: -scores[i])[:TOP]
    print("| Kendall tau (bootstrap 95% interval over the networks) | value |")
    print("|---|---|")
    print(f"| supernet score vs stand-alone, search fidelity (mean of 2 seeds, val) | {_tau_interval(scores, mean)} |")
    print(f"| supernet score vs stand-alone, search fidelity (one seed, val) | {_tau_interval(scores, a)} |")
    print(f"| supernet score vs confirmation fidelity (test) | {_tau_interval(scores, confirmed)} |")
    print(f"| stand-alone seed {cfg.train.seed} vs seed {cfg.train.seed + 1} (val) | {_tau_interval(a, b)} |")
    print(f"supernet's top {TOP} holds the stand-alone best (mean of 2 seeds): {'yes' if best in top else 'no'}")
    print(f"supernet scores {min(scores):.4f}-{max(scores):.4f}; stand-alone means {min(mean):.4f}-{max(mean):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=30)
    parser.add_argument("--spaces", nargs="+", default=["module", "stage"], choices=["module", "stage"])
    parser.add_argument("--jobs", type=int, default=2, help="stand-alone trainings at a time, one thread each")
    parser.add_argument("--threads", type=int, default=2, help="threads of the supernet's training and scoring")
    parser.add_argument("--cache", default="results/bench-supernet", help="supernets and stand-alone results")
    defaults = SupernetSettings()
    parser.add_argument("--budgets", type=float, nargs=2, default=defaults.budgets)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--random-subnets", type=int, default=defaults.random_subnets)
    parser.add_argument("--distill", action=argparse.BooleanOptionalAction, default=defaults.distill)
    parser.add_argument("--sort-channels", action=argparse.BooleanOptionalAction, default=defaults.sort_channels)
    parser.add_argument("--calibration-batches", type=int, default=defaults.calibration_batches)
    parser.add_argument("--calibration-batch-size", type=int, default=defaults.calibration_batch_size)
    parser.add_argument("--score-images", type=int, default=defaults.score_images, help="validation images per score")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the main job's config")
    args = parser.parse_args()
    register()  # the schemas Hydra composes the main job's config into
    with tempfile.TemporaryDirectory() as tmp:
        cfg = precheck([*args.overrides, f"study.results_dir={tmp}", "logger=none"])
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    d = cfg.data
    print(
        f"{cfg.budget.macs:,} MACs ({cfg.budget.mode}); supernet: budgets {args.budgets}, {args.epochs} epochs, "
        f"{args.random_subnets} random subnets/step, distillation {'on' if args.distill else 'off'}, "
        f"channel sorting {'on' if args.sort_channels else 'off'}, "
        f"recalibration {args.calibration_batches}x{args.calibration_batch_size} images; search fidelity: "
        f"{cfg.train.epochs} epochs on data.subset={d.subset}, val {d.val_size}"
    )
    for share in args.spaces:
        _space(cfg, share, args, cache)


if __name__ == "__main__":
    main()
