"""SIGKILLed workers, against real processes on SQLite, the journal file and PostgreSQL: the
killed trial is retried from its checkpoint, on a restart or by another worker once its heartbeat
stops. (A module of its own, so xdist's other process takes it while one runs test_workers.)"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.optimize.status import counts
from tests.search.conftest import run_search, start_search
from tests.search.optimize.test_workers import EPOCHS, SLOW, _assert_exactly, _study
from tests.search.storages import STORAGES, storage_url, unique_name


def _kill_mid_trial(proc, directory: Path, url: str, name: str, *, not_pid: int | None = None) -> int:
    """Wait until some trial has written a checkpoint (epoch 1 of 4 done), SIGKILL the process
    running it, and return that trial's number."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for path in sorted((directory / "checkpoints").glob("trial-*.pt")):
            number = int(path.stem.removeprefix("trial-"))
            trial = next((t for t in _study(url, name).get_trials() if t.number == number), None)
            if trial is None or trial.state != TrialState.RUNNING or "worker" not in trial.user_attrs:
                continue
            pid = int(trial.user_attrs["worker"].rpartition(":")[2])
            if pid == not_pid:
                continue
            os.kill(pid, signal.SIGKILL)
            return number
        time.sleep(0.1)
    raise AssertionError("no trial reached its first checkpoint")


def _finished(trials: list[optuna.trial.FrozenTrial]) -> dict[int, tuple]:
    return {t.number: (t.state, t.value, t.params) for t in trials if counts(t)}


def _assert_retried_from_checkpoint(trials: list[optuna.trial.FrozenTrial], killed: int) -> None:
    dead = next(t for t in trials if t.number == killed)
    assert dead.state == TrialState.FAIL and "status" not in dead.user_attrs
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == killed)
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params
    assert retry.user_attrs["resumed_from"]["trial"] == killed
    assert retry.user_attrs["resumed_from"]["epoch"] >= 1
    assert sorted(retry.intermediate_values) == list(range(1, EPOCHS + 1))  # the killed epochs reported again


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORAGES)
def test_a_worker_killed_mid_trial_is_retried_on_restart(kind: str, tmp_path: Path) -> None:
    url = storage_url(kind, tmp_path)
    name = unique_name("kill")
    args = [*SLOW, "search.n_trials=3", f"study.name={name}", f"search.storage={url}"]
    directory = tmp_path / "results" / name
    proc = start_search(args, tmp_path)
    killed = _kill_mid_trial(proc, directory, url, name)
    proc.wait(timeout=60)
    before = _finished(_study(url, name).get_trials())
    assert proc.returncode == -signal.SIGKILL and killed not in before

    run_search(args, tmp_path)  # the restart: this host sees the dead worker's pid at once
    trials = _study(url, name).get_trials()
    _assert_exactly(trials, 3)
    after = _finished(trials)
    assert {n: after[n] for n in before} == before  # nothing finished was lost or repeated
    _assert_retried_from_checkpoint(trials, killed)
    assert not list((directory / "checkpoints").glob("*.pt"))  # finished trials clean up


@pytest.mark.slow
@pytest.mark.parametrize("kind", [k for k in STORAGES if k != "journal"])
def test_a_killed_workers_trial_is_retried_by_another_worker_after_its_heartbeat_stops(
    kind: str, tmp_path: Path
) -> None:
    """Two local workers; worker 1 is SIGKILLed mid-trial. Worker 0 keeps going, fails the trial
    once its heartbeat is 3 s stale, and runs the retry: no restart. (The journal storage has
    no heartbeats; there a restart recovers, as the test above shows.)"""
    url = storage_url(kind, tmp_path)
    name = unique_name("beat")
    args = [
        *SLOW,
        "search.n_trials=4",
        "search.n_workers=2",
        "search.heartbeat_interval=1",
        "search.grace_period=3",
        f"study.name={name}",
        f"search.storage={url}",
    ]
    directory = tmp_path / "results" / name
    proc = start_search(args, tmp_path)
    killed = _kill_mid_trial(proc, directory, url, name, not_pid=proc.pid)
    out, err = proc.communicate(timeout=400)
    assert proc.returncode == 1, err  # the run finishes, and says a worker died
    assert "worker-1" in err
    trials = _study(url, name).get_trials()
    _assert_exactly(trials, 4)
    _assert_retried_from_checkpoint(trials, killed)
    assert "lost" in (directory / "report.md").read_text()  # the dead trial, and its retry, reported
