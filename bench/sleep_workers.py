"""Stand-in trials that measure the worker machinery alone: two parameters, then a sleep.

Used by `bench/workers.py` (trials per second of 1, 2 and 4 workers) and by the worker tests:
workers are separate processes on one study, each running `search.optimize.workers.run_worker` exactly as
a real search does, with the training replaced by a sleep.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from typing import Any

import optuna

from search.optimize.status import Status
from search.optimize.storage import heartbeat_enabled, open_storage
from search.optimize.workers import run_worker

__all__ = ["sleep_objective", "sleep_study"]


def sleep_objective(seconds: float) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        y = trial.suggest_int("y", 0, 8)
        time.sleep(seconds)
        trial.set_user_attr("status", Status.COMPLETE)
        return -(x**2) + y / 8

    return objective


def sleep_study(
    url: str,
    name: str,
    *,
    n_workers: int,
    n_trials: int,
    seconds: float,
    heartbeat_interval: int | None = None,
) -> float:
    """Create study `name` and run `n_workers` processes of sleep trials on it until it holds
    `n_trials`; return the wall seconds from the workers' start to the last one's end (process
    start-up and connecting to the storage excluded: each worker waits at a barrier after both)."""
    optuna.create_study(study_name=name, storage=open_storage(url), direction="maximize")
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(n_workers + 1)
    processes = [
        context.Process(target=_barrier_then, args=(ready, url, name, n_trials, seconds, heartbeat_interval, i))
        for i in range(n_workers)
    ]
    for process in processes:
        process.start()
    ready.wait()
    start = time.perf_counter()
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - start
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} sleep worker(s) failed with exit codes {failed}")
    return elapsed


def _barrier_then(
    ready: Any, url: str, name: str, n_trials: int, seconds: float, heartbeat_interval: int | None, seed: int
) -> None:
    """A sleep worker: connects to the study, waits for the others, then runs trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url, heartbeat_interval=heartbeat_interval)
    study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=seed))
    study.get_trials(deepcopy=False)  # the first query opens the connection
    ready.wait()
    run_worker(study, sleep_objective(seconds), n_trials, heartbeats=heartbeat_enabled(storage))
