"""Ctrl-C once, Ctrl-C twice and SIGTERM, against real processes on SQLite and PostgreSQL: each
stop hands the trial in flight back at its last finished epoch (one line, no traceback, exit 130
or 143), and the next run resumes it from there.

One study per storage takes all three stops in a row, each in the trial running at the time:
the first in the hand design (trial #0), the next ones, as a rule, in its retries, as a resumed
run takes a handed-back trial first. The hand design must still finish and be reported as the
hand design, and the study still ends at exactly n_trials. Four processes per storage."""

from __future__ import annotations

import contextlib
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.optimize.status import Status, hand_design, status
from search.optimize.storage import open_storage
from tests.search.conftest import run_search, start_search
from tests.search.optimize.test_workers import _assert_exactly
from tests.search.storages import one_storage, storage_url, unique_name
from tests.search.wandb_records import read_runs

EPOCHS = 8
N_TRIALS = 3
ARGS = [
    "data=synthetic",
    "data.n_samples=256",
    f"train.epochs={EPOCHS}",
    "train.batch_size=32",
    "budget.mode=project",
    "search.pruner=none",
    "search.checkpoint_seconds=null",  # no periodic checkpoints: a retry resumes from what the stop saved
    "search.n_startup_trials=2",
    f"search.n_trials={N_TRIALS}",
    "progress=false",
]
# stop: (signals sent, exit code, how the line names it)
STOPS = {
    "sigterm": ((signal.SIGTERM,), 143, "SIGTERM"),
    "ctrl-c": ((signal.SIGINT,), 130, "Ctrl-C (SIGINT)"),
    "ctrl-c-twice": ((signal.SIGINT, signal.SIGINT), 130, "Ctrl-C (SIGINT)"),
}
_HANDED_BACK = re.compile(r"trial (\d+) handed back after (\d+) finished epoch\(s\)")


@dataclass
class Stopped:
    returncode: int
    out: str
    err: str
    trial: int  # the trial the line says was handed back
    epoch: int  # after how many finished epochs


@dataclass
class Study:
    name: str
    directory: Path
    trials: list[optuna.trial.FrozenTrial]
    stops: dict[str, Stopped]
    wandb: bool


def _study(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url))


def _training(proc, url: str, name: str) -> None:
    """Wait until a running trial has finished an epoch in this run (one past the epoch a retry
    resumed from) and is two epochs short of its end. A window that always opens in some trial:
    a retry resumed too late for it is followed by a fresh trial, as the study is not complete."""
    deadline = time.monotonic() + 240
    with one_storage(url) as storage:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            with contextlib.suppress(KeyError):  # the study is not created yet
                for t in optuna.load_study(study_name=name, storage=storage).get_trials():
                    start = t.user_attrs.get("resumed_from", {}).get("epoch", 0)
                    if t.state == TrialState.RUNNING and start < len(t.intermediate_values) <= EPOCHS - 2:
                        return
            time.sleep(0.02)
    raise AssertionError("no trial finished an epoch in this run")


def _stopped_three_times(kind: str, cwd: Path) -> Study:
    url = storage_url(kind, cwd)
    name = unique_name("stop")
    wandb = kind == "sqlite"  # W&B (offline) on one storage: the stopped runs are closed as preempted
    args = [*ARGS, f"study.name={name}", f"search.storage={url}", "logger=wandb" if wandb else "logger=none"]
    stops = {}
    for stop, (signals, _, _) in STOPS.items():
        proc = start_search(args, cwd)
        _training(proc, url, name)
        for i, number in enumerate(signals):
            time.sleep(0.02 * i)  # a second signal once the first was taken
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(number)
        out, err = proc.communicate(timeout=120)
        found = _HANDED_BACK.search(err)
        assert found, out + err
        stops[stop] = Stopped(proc.returncode, out, err, int(found[1]), int(found[2]))
    run_search(args, cwd)
    return Study(name, cwd / "results" / name, _study(url, name).get_trials(), stops, wandb)


class _Stopped:
    """The tests of one storage's stopped study; a class per storage, so that pytest-xdist's
    loadscope runs the two on different test processes."""

    kind: str

    @pytest.fixture(scope="class")
    @classmethod
    def stopped(cls, tmp_path_factory: pytest.TempPathFactory) -> Study:
        return _stopped_three_times(cls.kind, tmp_path_factory.mktemp(cls.kind))

    @pytest.mark.slow
    @pytest.mark.parametrize("stop", list(STOPS))
    def test_a_stop_hands_the_trial_back_and_the_next_run_resumes_it_from_its_epoch(
        self, stopped: Study, stop: str
    ) -> None:
        _, code, said = STOPS[stop]
        s = stopped.stops[stop]
        assert s.returncode == code, s.out + s.err
        assert "Traceback" not in s.out + s.err
        line = s.err.strip().splitlines()[-1]  # one line says what was kept and how to resume
        assert re.match(
            rf"study {stopped.name}: stopped by (a second )?{re.escape(said)}: trial {s.trial} handed back", line
        )
        assert line.endswith("the same command resumes the study"), line
        assert s.epoch >= 1
        dead = next(t for t in stopped.trials if t.number == s.trial)
        assert dead.state == TrialState.FAIL and "status" not in dead.user_attrs  # not counted: handed back
        retry = next(t for t in stopped.trials if t.system_attrs.get("retry_history", [None])[-1] == s.trial)
        assert retry.user_attrs["resumed_from"] == {"trial": s.trial, "epoch": s.epoch}  # its last finished epoch
        if stopped.wandb:
            runs = {r.name.split("-")[1]: r for r in read_runs(stopped.directory / "wandb")}
            stopped_run = runs[f"{s.trial:04d}"]
            assert stopped_run.preempting and stopped_run.exit_code != 0
            assert stopped_run.summary["state"] == "interrupted"

    @pytest.mark.slow
    def test_the_stopped_hand_design_still_finishes_and_is_reported(self, stopped: Study) -> None:
        _assert_exactly(stopped.trials, N_TRIALS)
        assert stopped.stops["sigterm"].trial == 0  # the hand design, the first trial, took the first stop
        hand = hand_design(stopped.trials)
        assert hand is not None and status(hand) == Status.COMPLETE
        assert hand.system_attrs["retry_history"][0] == 0  # finished by a retry: found through it
        assert sorted(hand.intermediate_values) == list(range(1, EPOCHS + 1))
        report = (stopped.directory / "report.md").read_text()
        line = next(x for x in report.splitlines() if x.startswith("- hand design"))
        assert f"(trial #{hand.number}," in line and "validation accuracy" in line, line


class TestOnSQLite(_Stopped):
    kind = "sqlite"


class TestOnPostgreSQL(_Stopped):
    kind = "postgresql"
