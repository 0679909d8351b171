"""Many real worker processes on one study, on SQLite, the journal file and PostgreSQL: exact
trial counts, SIGKILLed workers whose trials are retried from their checkpoints, and trials that
fail (NaN, out of memory) without stopping the study."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench.sleep_workers import sleep_study
from search.data.sources import data_config
from search.optimize.status import Status, counts, tally
from search.optimize.storage import open_storage
from tests.search.conftest import REPO, run_search, search_env, start_search
from tests.search.storages import STORAGES, storage_url, unique_name

FAST = [
    "data=synthetic",
    "data.n_samples=256",
    "train.epochs=1",
    "train.batch_size=32",
    "budget.mode=project",
    "search.n_startup_trials=2",
    "logger=none",
    "progress=false",
]
# Trials long enough to be killed in the middle: four short epochs (8 batches each), every trial trained.
EPOCHS = 4
SLOW = [
    "data=synthetic",
    "data.n_samples=256",
    f"train.epochs={EPOCHS}",
    "train.batch_size=32",
    "budget.mode=project",
    "search.pruner=none",
    "search.checkpoint_seconds=0",
    "search.n_startup_trials=2",
    "logger=none",
    "progress=false",
]


def _study(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url))


def _assert_exactly(trials: list[optuna.trial.FrozenTrial], n_trials: int) -> None:
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) and sorted(numbers) == list(range(len(numbers)))
    counted, running, waiting = tally(trials)
    assert (counted, running, waiting) == (n_trials, 0, 0)
    for t in trials:  # anything that did not count lost a race or was retried, and says so
        assert counts(t) or t.state == TrialState.FAIL


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORAGES)
def test_four_workers_with_a_fast_objective_stop_at_exactly_n_trials(kind: str, tmp_path: Path) -> None:
    url = storage_url(kind, tmp_path)
    name = unique_name("sleep")
    sleep_study(url, name, n_workers=4, n_trials=20, seconds=0.02)
    trials = _study(url, name).get_trials()
    _assert_exactly(trials, 20)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 20
    assert all(t.user_attrs.get("status") == Status.SURPLUS for t in trials if t.state == TrialState.FAIL)


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORAGES)
def test_local_workers_through_the_cli_with_a_nan_and_an_oom_trial(kind: str, tmp_path: Path) -> None:
    """`search.n_workers=2`: two processes, one study; across them the first training run
    diverges for real (lr 1e6) and the second runs out of memory (injected in the worker
    process); both fail with their reason stored and the study still reaches n_trials."""
    url = storage_url(kind, tmp_path)
    name = unique_name("workers")
    faults = tmp_path / "faults"
    faults.mkdir()
    env = search_env(REPO / "tests" / "search" / "faults", INCEPTION_TEST_FAULTS=str(faults))
    args = [*FAST, "search.n_workers=2", "search.n_trials=5", f"study.name={name}", f"search.storage={url}"]
    run_search(args, tmp_path, env=env)
    assert sorted(p.name for p in faults.iterdir()) == ["nan", "oom"]
    trials = _study(url, name).get_trials()
    _assert_exactly(trials, 5)
    reasons = sorted(t.user_attrs["fail_reason"] for t in trials if t.user_attrs.get("status") == "failed")
    assert len(reasons) == 2
    assert reasons[0] == "CUDA out of memory" and reasons[1].startswith("train_loss became nan in epoch 1")
    # A second process joined the study: its own log. (Whether it also won a trial depends on
    # how fast it started against the first one's short trials: a clock, not asserted.)
    assert (tmp_path / "results" / name / "workers" / "worker-1.log").is_file()
    report = (tmp_path / "results" / name / "report.md").read_text()
    assert "CUDA out of memory" in report


def test_local_workers_get_gpus_round_robin_and_share_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from search.config.schema import Config, SearchConfig, TrainConfig
    from search.optimize.workers import worker_config

    cfg = Config(search=SearchConfig(n_workers=4))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert [worker_config(cfg, i, 4).train.device for i in range(4)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:0"]
    pinned = Config(train=TrainConfig(device="cuda:1"))
    assert worker_config(pinned, 2, 4).train.device == "cuda:1"  # an explicit device is kept
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    on_cpu = [worker_config(cfg, i, 4).train for i in range(4)]
    assert {(t.device, t.threads) for t in on_cpu} == {("auto", 4)}
    assert worker_config(Config(data=data_config("digits")), 0, 1).train.threads is None  # one worker: torch's default


@pytest.mark.slow
@pytest.mark.parametrize("kind", [k for k in STORAGES if k != "sqlite"])
def test_separately_started_commands_join_one_study(kind: str, tmp_path: Path) -> None:
    """The many-machines recipe: independent `python -m search` processes (here in two folders,
    as on two machines) with one storage URL and study name stop together at n_trials."""
    url = storage_url(kind, tmp_path / "shared")
    name = unique_name("join")
    procs = []
    for worker in (0, 1):
        machine = tmp_path / f"machine-{worker}"
        machine.mkdir()
        # one CPU thread each: two processes with two busy-waiting OpenMP threads apiece on two
        # cores slow each other down tenfold (search.n_workers splits the cores by itself)
        args = [
            *FAST,
            "search.n_trials=6",
            "train.threads=1",
            f"search.worker={worker}",
            f"study.name={name}",
            f"search.storage={url}",
        ]
        procs.append(start_search(args, machine))
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    trials = _study(url, name).get_trials()
    _assert_exactly(trials, 6)
    assert len({t.user_attrs["worker"] for t in trials if "worker" in t.user_attrs}) == 2  # both ran trials
    for worker in (0, 1):  # each machine writes the study's reports in its own folder
        assert (tmp_path / f"machine-{worker}" / "results" / name / "report.md").is_file()


def test_a_live_worker_whose_trial_was_failed_as_stale_carries_on(tmp_path: Path) -> None:
    """Another worker failed this worker's trial (its heartbeat looked stale): the next write
    raises inside the trial; the worker must not die, and the study still fills up."""
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=1))
    calls = []

    def objective(trial: optuna.Trial) -> float:
        calls.append(trial.number)
        if len(calls) == 1:
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            trial.set_user_attr("status", "complete")  # raises UpdateFinishedTrialError
        trial.set_user_attr("status", "complete")
        return 1.0

    from search.optimize.workers import run_worker

    run_worker(study, objective, 3, heartbeats=True)
    assert tally(study.get_trials()) == (3, 0, 0) and len(calls) == 4


def test_start_up_recovery_skips_a_retry_still_carrying_its_predecessors_worker(tmp_path: Path) -> None:
    from search.optimize.workers import recover_dead_local_trials

    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 's.db'}"))
    import socket

    dead = f"{socket.gethostname()}:999999"  # no such pid
    first = study.ask()
    first.set_user_attr("worker", dead)
    recovered = recover_dead_local_trials(study, max_retry=3)
    assert recovered == [first.number]
    retry = study.ask()  # the queued copy, picked up: it inherits "worker" until its objective starts
    assert retry.user_attrs["worker"] == dead
    assert recover_dead_local_trials(study, max_retry=3) == []
    assert next(t for t in study.get_trials() if t.number == retry.number).state == TrialState.RUNNING


def test_a_budget_in_seconds_stops_the_search_once_spent() -> None:
    """search.budget_seconds: trials start until the counted ones have trained that long; a
    pruned trial's seconds count as spent, so a pruner's savings buy more trials."""
    from search.optimize.status import spent_seconds
    from search.optimize.workers import run_worker

    def objective(trial: optuna.Trial) -> float:
        pruned = trial.number % 2 == 1
        trial.set_user_attr("status", "pruned" if pruned else "complete")
        trial.set_user_attr("train_seconds", 1.0 if pruned else 3.0)  # a pruned network stopped early
        if pruned:
            raise optuna.TrialPruned()
        return 1.0

    study = optuna.create_study()
    study.set_user_attr("prescreen_seconds", 0.5)
    ran = run_worker(study, objective, 100, heartbeats=False, budget_seconds=8.0)
    # 0.5 + 3 + 1 + 3 = 7.5 < 8, then + 1 = 8.5: the fourth trial spends it, the fifth never starts
    assert ran == 4 and spent_seconds(study) == 8.5
    assert run_worker(study, objective, 100, heartbeats=False, budget_seconds=8.0) == 0  # resumed: nothing left
    assert run_worker(study, objective, 5, heartbeats=False) == 1  # without a budget, n_trials rules


def test_a_hand_design_stopped_without_a_retry_is_queued_for_one_and_found_through_it() -> None:
    """A study from before stops were handed back (Ctrl-C failed the warm-start trial and queued
    nothing): the next start queues its retry, which is then the hand design; one failed on its
    own (a NaN) is not retried, and the report's phrase says why."""
    from search.optimize.status import hand_design, hand_design_outcome
    from search.optimize.workers import recover_hand_design

    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({}, user_attrs={"warm_start": True})
    stopped = study.ask()
    study.tell(stopped, state=TrialState.FAIL)  # no status: stopped, not its own fault
    assert hand_design(study.get_trials()).number == stopped.number
    assert recover_hand_design(study, max_retry=3) == stopped.number
    assert recover_hand_design(study, max_retry=3) is None  # queued once
    retry = hand_design(study.get_trials())
    assert retry.number != stopped.number and retry.state == TrialState.WAITING
    assert retry.system_attrs["failed_trial"] == stopped.number and retry.user_attrs["warm_start"]
    assert hand_design_outcome(retry).startswith("waiting: handed back after a stop")
    ran = study.ask()  # the retry runs and fails on its own
    assert ran.number == retry.number
    ran.set_user_attr("status", Status.FAILED)
    ran.set_user_attr("fail_reason", "train_loss became nan in epoch 1")
    study.tell(ran, state=TrialState.FAIL)
    own = hand_design(study.get_trials())
    assert own.number == retry.number and recover_hand_design(study, max_retry=3) is None
    assert hand_design_outcome(own) == "failed on its own (train_loss became nan in epoch 1), so not retried"
