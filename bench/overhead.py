"""Per-trial overhead outside training, as a fraction of a default trial.

    python bench/overhead.py [--trials 8] [--epochs 12]

Runs the default main job's configuration (digits, TPE, SQLite storage, W&B offline) without
pruning so every feasible trial trains its full epochs, then splits each trained trial's wall
time (Optuna's start to complete) into training (fit: epochs + per-epoch validation) and the
rest: sampling, analytic cost, budget check, storage writes, model build, W&B init/finish.
Optuna's own work between trials (tell, callbacks) is measured as optimize time minus trial
time. Goal: overhead < 3% of a default trial.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna

from search.config.schema import Config, SearchConfig, TrainConfig
from search.data.sources import data_config
from search.experiments.run import run_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs, help="per trial (default: the main job's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config(
            data=data_config("digits"),
            search=SearchConfig(n_trials=args.trials, pruner="none"),
            train=TrainConfig(epochs=args.epochs),
            progress=False,
        )
        cfg.budget.macs = 10**9  # every trial trains: we measure trained trials
        start = time.perf_counter()
        result = run_study(cfg, "overhead", Path(tmp))
        wall = time.perf_counter() - start
        trials = [t for t in result.study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
        durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]
        train = [t.user_attrs["train_seconds"] for t in trials]
        setup = [t.user_attrs["setup_seconds"] for t in trials]
        overhead = [d - s for d, s in zip(durations, train)]
        ordered = sorted(result.study.get_trials(), key=lambda t: t.number)
        gaps = [
            (b.datetime_start - a.datetime_complete).total_seconds()
            for a, b in zip(ordered, ordered[1:])
            if a.datetime_complete and b.datetime_start
        ]
        between = statistics.median(gaps)
        once = wall - sum(durations) - sum(gaps)
    print(f"{len(trials)} default trials (digits, {cfg.train.epochs} epochs, SQLite, W&B offline)")
    print(f"trial wall time: median {statistics.median(durations):.2f} s; training {statistics.median(train):.2f} s")
    print(
        f"inside a trial, outside training: median {statistics.median(overhead) * 1e3:.0f} ms "
        f"(sample+cost+budget+storage+build {statistics.median(setup) * 1e3:.0f} ms, W&B and the rest "
        f"{(statistics.median(overhead) - statistics.median(setup)) * 1e3:.0f} ms)"
    )
    print(f"between trials (tell, storage, progress callback, next trial's creation): median {between * 1e3:.0f} ms")
    total = (statistics.median(overhead) + between) / (statistics.median(durations) + between)
    inside = statistics.median(overhead) / statistics.median(durations)
    print(f"per-trial overhead: {inside:.2%} inside trials, {total:.2%} with the gap between trials (goal < 3%)")
    print(f"once per run, not per trial (imports, data load, study open, final test, reports and plots): {once:.1f} s")


if __name__ == "__main__":
    main()
