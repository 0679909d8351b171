"""Many workers, one study: starting local workers, who runs the next trial, when the study is
done, and what happens to the trial of a worker that died.

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

Local workers (`search.n_workers`) are fresh processes (spawn: no CUDA state or threads
inherited), each with its own GPU where there are several and its share of the CPU threads.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import socket
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from search.config.schema import Config, ConfigError
from search.data.sources import load_data
from search.data.splits import Splits, base_genotype
from search.optimize.objective import CATCH, Objective
from search.optimize.results import keep_best_weights
from search.optimize.status import UNTRAINED, Status, counts, hand_design, spent_seconds, status, tally
from search.optimize.storage import STORAGE_EXIT_CODE, StorageUnavailable, heartbeat_enabled, storage_url
from search.optimize.study import open_study
from search.training import interrupt
from search.training.interrupt import PoliteStop, StopNow
from search.training.tracking import Tracker
from search.training.trainer import Trainer, thread_share

__all__ = [
    "ObjectiveFactory",
    "Surplus",
    "claims_slot",
    "queue_retry",
    "recover_dead_local_trials",
    "recover_hand_design",
    "run_local_worker",
    "run_worker",
    "start_workers",
    "trained_objective",
    "worker_config",
    "worker_id",
]

log = logging.getLogger(__name__)

_FIRST_PAUSE = 0.05
_ACTIVE = (TrialState.RUNNING, TrialState.WAITING)
TrialCallback = Callable[[optuna.Study, FrozenTrial], None]
# What a worker runs for each trial, from (config, data, study folder, study name, storage URL);
# a module-level function, so that spawned workers receive it by name.
ObjectiveFactory = Callable[[Config, Splits, Path, str, str], Callable[[optuna.Trial], float]]


def trained_objective(cfg: Config, data: Splits, directory: Path, name: str, storage: str) -> Objective:
    """Every trial trains its network (search.strategy=train)."""
    return Objective(
        cfg=cfg,
        base=base_genotype(cfg.space.base, cfg.space.genotype, data),
        trainer=Trainer(cfg.train, data, augment=cfg.data.augment, val_epoch_size=cfg.data.val_epoch_size),
        tracker=Tracker(cfg.logger, study=name, directory=directory),
        study_dir=directory,
        storage=storage,
    )


# -- local worker processes ----------------------------------------------------------------
def worker_config(cfg: Config, index: int, n_workers: int) -> Config:
    """The config one of `n_workers` local workers trains with: its own GPU (round-robin over
    the visible devices) where the device is `auto` or `cuda`, and its share of the CPU threads."""
    train = cfg.train
    device = train.device
    if device in ("auto", "cuda") and torch.cuda.is_available():
        device = f"cuda:{index % torch.cuda.device_count()}"
    threads = thread_share(train, n_workers, device)
    return dataclasses.replace(cfg, train=dataclasses.replace(train, device=device, threads=threads))


def run_local_worker(
    cfg: Config,
    name: str,
    directory: Path,
    index: int,
    *,
    opened: tuple[optuna.Study, optuna.storages.BaseStorage] | None = None,
    data: Splits | None = None,
    callbacks: Sequence[TrialCallback] = (),
    objective_for: ObjectiveFactory = trained_objective,
) -> int:
    """Run trials as local worker `index` of `search.n_workers` until the study holds
    `search.n_trials` counted trials; return how many it ran. Worker 0 passes the study and data
    it has open; a spawned worker opens its own."""
    cfg = worker_config(cfg, index, cfg.search.n_workers)
    data = data or load_data(cfg.data)
    study, storage = opened or open_study(cfg, name, directory, worker=cfg.search.worker * cfg.search.n_workers + index)
    objective = objective_for(cfg, data, directory, name, storage_url(cfg, directory))
    return run_worker(
        study,
        objective,
        cfg.search.n_trials,
        heartbeats=heartbeat_enabled(storage),
        catch=CATCH,
        max_untrained_in_row=cfg.search.max_untrained_in_row,
        budget_seconds=cfg.search.budget_seconds,
        max_retry=cfg.search.max_retry,
        callbacks=[lambda study, _trial: keep_best_weights(study, directory), *callbacks],
    )


def _worker_process(cfg: Config, name: str, directory: str, index: int, objective_for: ObjectiveFactory) -> None:
    """Entry point of a spawned local worker: its log goes to workers/worker-<index>.log."""
    path = Path(directory) / "workers" / f"worker-{index}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format=f"[%(asctime)s][worker {index}][%(name)s][%(levelname)s] - %(message)s",
        handlers=[logging.FileHandler(path), logging.StreamHandler()],
        force=True,
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    interrupt.install()
    try:
        ran = run_local_worker(cfg, name, Path(directory), index, objective_for=objective_for)
    except ConfigError as err:
        log.error("%s", err)
        raise SystemExit(2) from None
    except (PoliteStop, StopNow) as stop:
        log.warning("%s", stop)
        raise SystemExit(interrupt.exit_code()) from None
    except StorageUnavailable as err:
        log.error("%s", err)
        raise SystemExit(STORAGE_EXIT_CODE) from None
    log.info("worker %d ran %d trials", index, ran)


def start_workers(
    cfg: Config, name: str, directory: Path, objective_for: ObjectiveFactory = trained_objective
) -> list[multiprocessing.process.BaseProcess]:
    """Local workers 1..K-1 as fresh processes; this process is worker 0."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_worker_process,
            args=(cfg, name, str(directory), i, objective_for),
            name=f"worker-{i}",
            daemon=False,
        )
        for i in range(1, cfg.search.n_workers)
    ]
    for process in processes:
        process.start()
    return processes


# -- slots and the stop rule ---------------------------------------------------------------
class Surplus(Exception):
    """This trial lost the race for the last slot: it ends as FAIL with status "surplus"."""


def claims_slot(study: optuna.Study, number: int, n_trials: int) -> bool:
    """True when fewer than `n_trials` trials numbered below `number` have counted or are active."""
    ahead = sum(1 for t in study.get_trials(deepcopy=False) if t.number < number and (counts(t) or t.state in _ACTIVE))
    return ahead < n_trials


def worker_id() -> str:
    """`host:pid`, stored on each trial as the user attribute "worker"."""
    return f"{socket.gethostname()}:{os.getpid()}"


class _Claimed:
    """The objective, run only for trials that hold a slot; each trial records its worker."""

    def __init__(self, objective: Callable[[optuna.Trial], float], n_trials: int) -> None:
        self.objective = objective
        self.n_trials = n_trials
        self.current: int | None = None  # the number of the trial this worker runs or ran last

    def __call__(self, trial: optuna.Trial) -> float:
        self.current = trial.number
        trial.set_user_attr("worker", worker_id())
        if not claims_slot(trial.study, trial.number, self.n_trials):
            trial.set_user_attr("status", Status.SURPLUS)
            raise Surplus(f"trial {trial.number}: the study already has {self.n_trials} trials")
        return self.objective(trial)


class _UntrainedInRow:
    """Counts this worker's consecutive over-budget or duplicate draws; too many stop the search."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.in_row = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        outcome = status(trial)
        if outcome == Status.SURPLUS:
            return
        self.in_row = self.in_row + 1 if outcome in UNTRAINED else 0
        if self.limit is not None and self.in_row >= self.limit:
            raise ConfigError(
                f"search.max_untrained_in_row={self.limit}: the last {self.in_row} draws were all over budget or "
                f"duplicates, none trained ({counts_line(study)}); use budget.mode=project (every draw scaled into "
                "the budget), a larger budget.macs, or a narrower space (space.width_scale, space.modules_per_stage)"
            )


def _run_one(
    study: optuna.Study,
    claimed: _Claimed,
    *,
    catch: tuple[type[Exception], ...],
    callbacks: list[TrialCallback],
    max_retry: int | None,
) -> None:
    """One trial; a stop (SIGTERM, Ctrl-C, a requeue) hands it back for a retry first."""
    # optimize() fails stale trials itself before asking, and beats for the trial it runs
    try:
        study.optimize(claimed, n_trials=1, catch=(*catch, Surplus), callbacks=callbacks, gc_after_trial=False)
    except PoliteStop:
        raise PoliteStop(_hand_back(study, claimed.current, max_retry, interrupt.signal_name())) from None
    except StopNow as now:  # a second signal: the same hand-back, without waiting for a batch
        cause = f"a second {interrupt.signal_name()}"
        raise StopNow(int(now.code or 1), _hand_back(study, claimed.current, max_retry, cause)) from None
    except SystemExit:  # submitit's checkpoint-and-requeue (SLURM's USR2) exits from its signal handler
        log.warning("%s", _hand_back(study, claimed.current, max_retry, cause="the job's exit"))
        raise
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError) as err:
        stale = isinstance(err, optuna.exceptions.UpdateFinishedTrialError) or "Cannot tell a FAIL trial" in str(err)
        if not stale:
            raise
        # This worker was alive but silent past the grace period (a stalled storage, say):
        # another worker failed its trial and queued the retry. Carry on with the next one.
        log.warning("a trial of this worker was failed as stale by another worker; its retry takes over")


def _hand_back(study: optuna.Study, number: int | None, max_retry: int | None, cause: str) -> str:
    """Fail this worker's trial in flight (if it still runs) and queue its retry, which resumes
    from the trial's checkpoint; what happened, as one line. A further signal waits until both
    writes are done (interrupt.held): a trial failed without its retry would be lost."""
    with interrupt.held():
        trial = next((t for t in study.get_trials(deepcopy=True) if t.number == number), None)
        if trial is None or trial.state != TrialState.RUNNING:
            return f"stopped by {cause} between trials; the same command resumes the study"
        study.tell(trial.number, state=TrialState.FAIL)
        queue_retry(study, trial.number, max_retry)
    epochs = len(trial.intermediate_values)
    return (
        f"stopped by {cause}: trial {trial.number} handed back after {epochs} finished epoch(s) and queued for a "
        "retry that resumes from its checkpoint; the same command resumes the study"
    )


def queue_retry(study: optuna.Study, number: int, max_retry: int | None) -> bool:
    """Queue a copy of failed trial `number` (its parameters and attributes, "warm_start"
    among them) that resumes from its checkpoint: Optuna's retry, up to `max_retry` times.
    Whether a copy was queued (not when the retries are used up), as the storage shows it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        frozen = next(t for t in study.get_trials(deepcopy=True) if t.number == number)
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)(study, frozen)
    return any(t.system_attrs.get("retry_history", [None])[-1] == number for t in study.get_trials(deepcopy=False))


def seconds_spent(study: optuna.Study, budget_seconds: float | None) -> bool:
    """Whether the study has spent `search.budget_seconds` (never, without one)."""
    return budget_seconds is not None and spent_seconds(study) >= budget_seconds


def counts_line(study: optuna.Study) -> str:
    """`12 trained, 480 infeasible, 3 duplicate`: a study's outcomes in one phrase."""
    by = Counter(status(t) for t in study.get_trials(deepcopy=False))
    return ", ".join(f"{n} {s}" for s, n in by.most_common())


def run_worker(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    *,
    heartbeats: bool,
    catch: tuple[type[Exception], ...] = (),
    callbacks: Sequence[TrialCallback] = (),
    max_pause_seconds: float = 2.0,
    max_untrained_in_row: int | None = None,
    budget_seconds: float | None = None,
    max_retry: int | None = 3,
) -> int:
    """Run trials of `study` until `n_trials` have counted, or (`budget_seconds`) until its
    counted trials have trained that many seconds; return how many this worker ran. A budget in
    seconds lets a method that stops networks early (a pruner) train more of them; the trials
    running when it is reached still finish, so a study overshoots it by at most one trial per
    worker.

    With `heartbeats` (the study's storage beats: `search.storage.heartbeat_enabled`), a worker
    waits while the last slots are held by running trials, so a trial whose worker dies is
    failed when its heartbeat goes stale and retried here. Without them (the journal storage) a
    running trial cannot be told from a dead one, so the worker stops once every slot is taken.

    Over-budget draws and duplicates do not count; `max_untrained_in_row` of them in a row from
    this worker end the search with a ConfigError that says how to widen the feasible region.

    A SIGTERM or Ctrl-C (search.training.interrupt) stops the worker politely: the trial in
    flight, saved at its last finished epoch by the objective, is failed and queued for a retry
    (up to `max_retry` times) that resumes from there; PoliteStop (StopNow after a second
    signal) then says so in one line. A
    SystemExit (submitit requeueing a SLURM job on its USR2) hands the trial back the same way,
    so the requeued job goes on from that epoch."""
    claimed = _Claimed(objective, n_trials)
    untrained = _UntrainedInRow(max_untrained_in_row)
    ran = 0
    pause = _FIRST_PAUSE
    while True:
        counted, running, waiting = tally(study.get_trials(deepcopy=False))
        if counted >= n_trials or seconds_spent(study, budget_seconds):
            return ran
        if counted + running >= n_trials and not waiting:
            if not heartbeats:
                return ran
            # The last slots are held by running trials: wait, backing off from 50 ms (a short
            # tail ends at once) to `max_pause_seconds` (a long one costs a query per interval),
            # failing stale trials so that a dead worker's trial comes back as a WAITING retry.
            time.sleep(pause)
            pause = min(2 * pause, max_pause_seconds)
            _fail_stale(study)
            continue
        pause = _FIRST_PAUSE
        _run_one(study, claimed, catch=catch, callbacks=[untrained, *callbacks], max_retry=max_retry)
        ran += 1


# -- dead workers --------------------------------------------------------------------------
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
            study.tell(t.number, state=TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            continue  # another worker got there first (ValueError: "Cannot tell a FAIL trial")
        queue_retry(study, t.number, max_retry)
        log.warning("trial %d: its worker %s is gone; failed and queued for a retry", t.number, t.user_attrs["worker"])
        failed.append(t.number)
    return failed


def recover_hand_design(study: optuna.Study, max_retry: int | None) -> int | None:
    """Queue a retry of the hand design's trial where it was stopped (not by a fault of its own)
    and nothing retries it: a Ctrl-C before stops were handed back, a hand-back cut short. The
    hand design is the one network every comparison is stated against; a search trial lost
    this way is simply replaced by a new draw, the hand design could not be. Run at start-up.
    Returns the number of the trial retried."""
    hand = hand_design(study.get_trials(deepcopy=False))  # the newest of its chain: no retry of it yet
    if hand is None or status(hand) != Status.LOST or not queue_retry(study, hand.number, max_retry):
        return None  # nothing stopped, or its retries are used up (search.max_retry)
    log.warning("trial %d (the hand design) was stopped without a retry; queued for one", hand.number)
    return hand.number


def _fail_stale(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
