"""Many workers, one study: who runs the next trial, and when the study is done.

Workers share nothing but the study's storage (SQLite, PostgreSQL, MySQL or Optuna's journal
file), so K processes on one machine, K SLURM jobs or K machines behave alike. Each worker loops:
fail stale trials (Optuna heartbeats), stop when `n_trials` trials have counted, otherwise ask
for one trial (Optuna hands out WAITING retries first) and claim a slot for it.

A slot is claimed from trial numbers, which the storage hands out atomically and in order: a
trial may run only while fewer than `n_trials` lower-numbered trials have counted or may still
count. Workers that ask at the same moment therefore never overshoot `n_trials`; the rare trial
that loses the race ends at once as a FAIL marked "surplus" and does not count.

A trial counts when it completed, was pruned, or failed for a stored reason of its own (a NaN
loss, out of memory). A trial whose worker died does not count: it is failed when its heartbeat
goes stale (RDB storages, any machine) or, at start-up, when its recorded `host:pid` is gone from
this machine (any storage); Optuna's retry callback then queues a copy, which resumes from the
dead trial's last checkpoint.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "SURPLUS",
    "Surplus",
    "claims_slot",
    "counts",
    "heartbeat_enabled",
    "recover_dead_local_trials",
    "run_worker",
    "sleep_objective",
    "sleep_study",
    "tally",
    "worker_id",
]

log = logging.getLogger(__name__)

SURPLUS = "surplus"
_FIRST_PAUSE = 0.05
_ACTIVE = (TrialState.RUNNING, TrialState.WAITING)


class Surplus(Exception):
    """This trial lost the race for the last slot: it ends as FAIL with status "surplus"."""


def counts(trial: FrozenTrial) -> bool:
    """Whether a finished trial uses one of the study's `n_trials`."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and trial.user_attrs.get("status") == "failed"


def tally(trials: Sequence[FrozenTrial]) -> tuple[int, int, int]:
    """(counted, running, waiting) trials."""
    counted = sum(counts(t) for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    return counted, running, waiting


def heartbeat_enabled(study: optuna.Study) -> bool:
    return optuna.storages._heartbeat.is_heartbeat_enabled(study._storage)


def claims_slot(study: optuna.Study, number: int, n_trials: int) -> bool:
    """True when fewer than `n_trials` trials numbered below `number` have counted or are active."""
    ahead = sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.number < number and (counts(t) or t.state in _ACTIVE)
    )
    return ahead < n_trials


def worker_id() -> str:
    """`host:pid`, stored on each trial as the user attribute "worker"."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_dead_local_trials(study: optuna.Study, max_retry: int | None) -> list[int]:
    """Fail and queue for retry the RUNNING trials whose worker ran on this host and is gone.

    Heartbeats find dead workers anywhere, but only after their grace period and only on RDB
    storages; this finds those of this machine at once, on any storage (the journal file has no
    heartbeats). Run at start-up, before this host starts workers. Returns the failed numbers."""
    host = socket.gethostname()
    failed = []
    trials = study.get_trials(deepcopy=False)
    workers = {t.number: t.user_attrs.get("worker") for t in trials}
    for t in trials:
        if t.state != TrialState.RUNNING:
            continue
        history = t.system_attrs.get("retry_history", [])
        if history and t.user_attrs.get("worker") == workers.get(history[-1]):
            continue  # a retry that has not written its own worker yet: the attribute is inherited
        owner, _, pid = str(t.user_attrs.get("worker", "")).rpartition(":")
        if owner != host or not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            if not study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            frozen = next(x for x in study.get_trials(deepcopy=True) if x.number == t.number)
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)(study, frozen)
        log.warning("trial %d: its worker %s is gone; failed and queued for a retry", t.number, t.user_attrs["worker"])
        failed.append(t.number)
    return failed


def _fail_stale(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


class _Claimed:
    """The objective, run only for trials that hold a slot."""

    def __init__(self, objective: Callable[[optuna.Trial], float], n_trials: int) -> None:
        self.objective = objective
        self.n_trials = n_trials

    def __call__(self, trial: optuna.Trial) -> float:
        if not claims_slot(trial.study, trial.number, self.n_trials):
            trial.set_user_attr("status", SURPLUS)
            raise Surplus(f"trial {trial.number}: the study already has {self.n_trials} trials")
        return self.objective(trial)


def run_worker(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    *,
    catch: tuple[type[Exception], ...] = (),
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
    max_pause_seconds: float = 2.0,
) -> int:
    """Run trials of `study` until `n_trials` have counted; return how many this worker ran.

    With heartbeats, a worker waits while the last slots are held by running trials, so a trial
    whose worker dies is failed when its heartbeat goes stale and retried here. Without
    heartbeats (the journal storage) a running trial cannot be told from a dead one, so the
    worker stops once every slot is taken."""
    claimed = _Claimed(objective, n_trials)
    beats = heartbeat_enabled(study)
    ran = 0
    pause = _FIRST_PAUSE
    while True:
        counted, running, waiting = tally(study.get_trials(deepcopy=False))
        if counted >= n_trials:
            return ran
        if counted + running >= n_trials and not waiting:
            if not beats:
                return ran
            # The last slots are held by running trials: wait, backing off from 50 ms (a short
            # tail ends at once) to `max_pause_seconds` (a long one costs a query per interval),
            # failing stale trials so that a dead worker's trial comes back as a WAITING retry.
            time.sleep(pause)
            pause = min(2 * pause, max_pause_seconds)
            _fail_stale(study)
            continue
        pause = _FIRST_PAUSE
        # optimize() fails stale trials itself before asking, and beats for the trial it runs
        try:
            study.optimize(claimed, n_trials=1, catch=(*catch, Surplus), callbacks=list(callbacks), gc_after_trial=False)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as err:
            if not isinstance(err, optuna.exceptions.UpdateFinishedTrialError) and "Cannot tell a FAIL trial" not in str(err):
                raise
            # This worker was alive but silent past the grace period (a stalled storage, say):
            # another worker failed its trial and queued the retry. Carry on with the next one.
            log.warning("a trial of this worker was failed as stale by another worker; its retry takes over")
        ran += 1


def sleep_objective(seconds: float) -> Callable[[optuna.Trial], float]:
    """A stand-in trial that measures the machinery alone: two parameters, then a sleep."""

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        y = trial.suggest_int("y", 0, 8)
        time.sleep(seconds)
        trial.set_user_attr("status", "complete")
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
    start-up and connecting to the storage excluded: each worker waits at a barrier after
    both). For tests and `bench/workers.py`."""
    import multiprocessing

    from search.storage import open_storage

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
    from search.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url, heartbeat_interval=heartbeat_interval)
    study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=seed))
    study.get_trials(deepcopy=False)  # the first query opens the connection
    ready.wait()
    run_worker(study, sleep_objective(seconds), n_trials)
