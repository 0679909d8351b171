"""TPE vs random search on digits: equal trials, three seeds, real training.

    python bench/samplers.py [--trials 20] [--seeds 3] [--epochs 12]

Each study is the default main job (budget, ranges, training) with `search.sampler` set; W&B
off. Prints per seed the best feasible validation accuracy and its test accuracy, then mean and
std per sampler, and the share of trials that were over budget.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from search.config.schema import Config, LoggerConfig, SearchConfig, TrainConfig
from search.data.sources import data_config
from search.experiments.run import run_study
from search.optimize.status import Status, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    summary: dict[str, list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for sampler in ("tpe", "random"):
            for seed in range(args.seeds):
                cfg = Config(
                    data=data_config("digits"),
                    search=SearchConfig(sampler=sampler, n_trials=args.trials, seed=seed),
                    train=TrainConfig(epochs=args.epochs),
                    logger=LoggerConfig(name="none"),
                    progress=False,
                )
                start = time.perf_counter()
                result = run_study(cfg, f"{sampler}-{seed}", Path(tmp) / f"{sampler}-{seed}")
                trials = result.study.get_trials()
                over = sum(status(t) == Status.INFEASIBLE for t in trials) / len(trials)
                best = result.best_trial.value if result.best_trial else float("nan")
                test = result.test_accuracy if result.test_accuracy is not None else float("nan")
                summary.setdefault(sampler, []).append((best, test, over))
                print(
                    f"{sampler:<6} seed {seed}: best val {best:.4f}, its test {test:.4f}, over budget {over:.0%}, "
                    f"{time.perf_counter() - start:.0f} s",
                    flush=True,
                )
    for sampler, rows in summary.items():
        vals, tests, overs = zip(*rows)
        print(
            f"{sampler:<6}: best val {statistics.mean(vals):.4f} +- "
            f"{statistics.stdev(vals) if len(vals) > 1 else 0:.4f}, "
            f"test {statistics.mean(tests):.4f} +- {statistics.stdev(tests) if len(tests) > 1 else 0:.4f}, "
            f"over budget {statistics.mean(overs):.0%}"
        )


if __name__ == "__main__":
    main()
