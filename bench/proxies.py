"""Do zero-cost proxies rank this space? Kendall's tau and Spearman's rho against trained accuracy.

    python bench/proxies.py [--n 50] [--macs 2000000] [--subset 6000] [--epochs 3] [--jobs 2]
    python bench/proxies.py --data synthetic --n 6 --epochs 1      # tiny mode (the tests)

`--n` random genotypes of the default space around googlenet-small, each width-projected into
[0.7, 1] x `--macs` (one budget: at a fixed budget the size signal that many proxies ride on is
gone), scored by every proxy in search/training/proxies.py on one fixed minibatch, then trained with the
main job's pipeline (fixed lr and weight decay: the proxies judge architectures) on Fashion-MNIST
(`--data digits` where its files are missing). Prints the correlations of each proxy, and of
plain params, MACs and depth (modules), with final validation accuracy, and each proxy's tau
within networks of equal depth (what it knows beyond depth); writes every row to `--out` (CSV).
Trainings run in `--jobs` processes of one thread each.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch
from scipy.stats import kendalltau, spearmanr

from search.budget.constraints import project
from search.config.schema import SMALL_INPUT_GENOTYPE, BudgetConfig, DataConfig, TrainConfig
from search.data.sources import data_config, load_data
from search.data.splits import Splits, base_genotype, minibatch
from search.training.proxies import proxy_scores
from search.training.trainer import Trainer
from space.genotype import Genotype
from space.model import build_model
from space.ranges import RandomDraw, Ranges, sample

_DATA: dict[str, Splits] = {}


def _data_config(args: argparse.Namespace) -> DataConfig:
    if args.data == "synthetic":
        return data_config("synthetic", n_samples=256, n_classes=4, channels=1, size=12)
    return data_config(args.data, subset=args.subset)


def _genotypes(args: argparse.Namespace, data: Splits) -> list[Genotype]:
    base = base_genotype("googlenet-small", SMALL_INPUT_GENOTYPE, data)
    ranges, budget = Ranges(), BudgetConfig(macs=args.macs, mode="project")
    found: list[Genotype] = []
    seed = 0
    while len(found) < args.n:
        projected = project(sample(RandomDraw(seed), ranges, base), budget, divisor=ranges.width_step)
        seed += 1
        if projected is not None and projected[0].key not in {g.key for g in found}:
            found.append(projected[0])
    return found


def _train(job: tuple[Genotype, argparse.Namespace]) -> tuple[float, float]:
    genotype, args = job
    torch.set_num_threads(1)
    if "data" not in _DATA:
        _DATA["data"] = load_data(_data_config(args))
    trainer = Trainer(TrainConfig(epochs=args.epochs, threads=1), _DATA["data"])
    torch.manual_seed(0)
    start = time.perf_counter()
    history, _ = trainer.fit(build_model(genotype), aux_weight=genotype.aux.weight)
    return history[-1].val_accuracy, time.perf_counter() - start


def _tau_at_equal_depth(values: list[float], accuracy: list[float], depth: list[float]) -> float:
    """Kendall's tau within each group of networks with the same number of modules (groups of
    three or more), averaged with the groups' sizes as weights. At a fixed budget, depth alone
    ranks this space about as well as the best proxies do, so a proxy that is only a depth
    counter shows its tau here fall to about zero; nan where no group is large enough."""
    groups: dict[float, list[int]] = {}
    for i, d in enumerate(depth):
        groups.setdefault(d, []).append(i)
    taus = [
        (len(idx), kendalltau([values[i] for i in idx], [accuracy[i] for i in idx]).statistic)
        for idx in groups.values()
        if len(idx) >= 3
    ]
    taus = [(n, t) for n, t in taus if not math.isnan(t)]  # a group constant in either gives nan
    return sum(n * t for n, t in taus) / sum(n for n, _ in taus) if taus else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--macs", type=int, default=2_000_000)
    parser.add_argument("--subset", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64, help="the proxies' minibatch")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--data", default="fashion-mnist", choices=("fashion-mnist", "digits", "synthetic"))
    parser.add_argument("--out", type=Path, default=Path("proxies.csv"))
    args = parser.parse_args()
    data = load_data(_data_config(args))
    genotypes = _genotypes(args, data)
    generator = torch.Generator().manual_seed(0)
    batch = torch.randperm(len(data.train), generator=generator)[: args.batch]
    x, y = minibatch(data, "train", batch)
    start = time.perf_counter()
    scores = [proxy_scores(g, x, y) for g in genotypes]
    proxy_seconds = time.perf_counter() - start
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        trained = list(pool.map(_train, [(g, args) for g in genotypes]))
    accuracy = [a for a, _ in trained]
    rows = [
        {"key": g.key, "val_accuracy": a, "train_seconds": s, **sc} for g, (a, s), sc in zip(genotypes, trained, scores)
    ]
    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(
        f"{len(genotypes)} genotypes at {args.macs:,} MACs (projected into [70%, 100%]) on {args.data}, "
        f"{args.epochs} epochs: val accuracy {min(accuracy):.4f}..{max(accuracy):.4f}"
    )
    print(
        f"proxies: {proxy_seconds / len(genotypes) * 1e3:.0f} ms per genotype (all of them); "
        f"training: {sum(s for _, s in trained) / len(trained):.1f} s per genotype"
    )
    depth = [sc["modules"] for sc in scores]
    print(f"{'proxy':<10} {'kendall tau':>12} {'spearman rho':>13} {'tau at equal depth':>19} {'tau with depth':>15}")
    for name in scores[0]:
        values = [sc[name] for sc in scores]
        tau = kendalltau(values, accuracy).statistic
        rho = spearmanr(values, accuracy).statistic
        print(
            f"{name:<10} {tau:>12.3f} {rho:>13.3f} {_tau_at_equal_depth(values, accuracy, depth):>19.3f} "
            f"{kendalltau(values, depth).statistic:>15.3f}"
        )
    print(f"rows: {args.out}")


if __name__ == "__main__":
    main()
