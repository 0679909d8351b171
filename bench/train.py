"""Trainer throughput vs a plain PyTorch loop, same model, data, batch size and epochs.

    python bench/train.py [--epochs 3] [--repeats 3] [--threads 2]
    python bench/train.py --epochs 1 --repeats 1 --threads 1 --limit 128   # tiny mode (the test suite)

The plain loop is the textbook one: a DataLoader over a TensorDataset (shuffle, default
collation), NCHW tensors, `loss.item()` every step, evaluation through a DataLoader. Ours is
`search.training.trainer.Trainer.fit` with its defaults (Polyak averaging included, which the plain loop
does not even do). Images per second over whole epochs (training + validation), median of
repeats. Goal: >= 1.5x on CPU.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import space
from search.config.schema import Config, TrainConfig
from search.data.sources import data_config, load_data
from search.data.splits import Splits, base_genotype
from search.training.trainer import Trainer


def _genotype(data: Splits) -> space.Genotype:
    """The default search's base network, shaped for `data`."""
    cfg = Config(data=data_config("digits"))
    return base_genotype(cfg.space.base, cfg.space.genotype, data)


def plain_loop(data: Splits, genotype: space.Genotype, cfg: TrainConfig) -> float:
    """Seconds for `cfg.epochs` epochs of the textbook loop."""
    torch.manual_seed(0)
    model = space.build_model(genotype)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    train = DataLoader(TensorDataset(data.train.images, data.train.labels), batch_size=cfg.batch_size, shuffle=True)
    val = DataLoader(TensorDataset(data.val.images, data.val.labels), batch_size=512)
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        model.train()
        for x, y in train:
            if len(y) < 2:
                continue
            logits, aux = model(x)
            loss = F.cross_entropy(logits, y) + sum(0.3 * F.cross_entropy(a, y) for a in aux.values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val:
                correct += (model(x).argmax(1) == y).sum().item()
    return time.perf_counter() - start


def ours(data: Splits, genotype: space.Genotype, cfg: TrainConfig) -> float:
    torch.manual_seed(0)
    trainer = Trainer(cfg, data)
    start = time.perf_counter()
    trainer.fit(space.build_model(genotype), aux_weight=0.3)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the test suite gives each process one)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images of each data set")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    settings = {
        "digits 8x8 (the default job)": data_config("digits", limit=args.limit),
        "digits at 16x16": data_config("digits", resolution=16, limit=args.limit),
        "synthetic 3x32x32": data_config("synthetic", n_samples=2048, size=32, limit=args.limit),
    }
    for label, data_cfg in settings.items():
        data = load_data(data_cfg)
        genotype = _genotype(data)
        cfg = TrainConfig(epochs=args.epochs)
        images = args.epochs * (len(data.train) + len(data.val))
        plain = statistics.median(plain_loop(data, genotype, cfg) for _ in range(args.repeats))
        fast = statistics.median(ours(data, genotype, cfg) for _ in range(args.repeats))
        print(
            f"{label}: {space.cost(genotype).macs / 1e6:.1f} MMACs/image; plain loop {images / plain:,.0f} img/s, "
            f"ours {images / fast:,.0f} img/s: {plain / fast:.2f}x (goal >= 1.5x)"
        )


if __name__ == "__main__":
    main()
