"""What clusters do to a study, against real processes and a real PostgreSQL server: the server
stopped mid-trial and started again within `search.storage_patience` (waited out: nothing
retrained) or past it (one line, exit 75, and a resume from the checkpoint); and submitit's
requeue. (SIGTERM and Ctrl-C: test_signals.py.)"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.optimize.storage import STORAGE_EXIT_CODE, open_storage
from tests.search.conftest import DIGITS, run_search, start_search
from tests.search.optimize.test_workers import EPOCHS, SLOW, _assert_exactly
from tests.search.storages import PostgresServer, one_storage, storage_url, unique_name

# Trials of four short epochs (8 batches each), so that a fault lands mid-trial; two per study.
FAULT = [*SLOW, "search.n_trials=2"]


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    own = PostgresServer()
    try:
        yield own
    finally:
        own.close()


def _study(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url))


def _mid_trial(proc, url: str, name: str) -> optuna.trial.FrozenTrial:
    """Wait until a trial has reported its first epoch and is still training; that trial."""
    deadline = time.monotonic() + 240
    with one_storage(url) as storage:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            try:
                trials = optuna.load_study(study_name=name, storage=storage).get_trials()
            except KeyError:  # the study is not created yet
                trials = []
            for t in trials:
                if t.state == TrialState.RUNNING and 1 <= len(t.intermediate_values) < EPOCHS - 1:
                    return t
            time.sleep(0.1)
    raise AssertionError("no trial reached its first epoch")


@pytest.mark.slow
def test_a_storage_outage_within_the_patience_is_waited_out(server: PostgresServer, tmp_path: Path) -> None:
    name = unique_name("outage")
    args = [*FAULT, f"study.name={name}", f"search.storage={server.url}"]
    proc = start_search([*args, "search.storage_patience=120"], tmp_path)
    in_flight = _mid_trial(proc, server.url, name)
    server.stop()
    seen = []
    for line in proc.stdout:  # down until the worker has met the outage (its next write) and waits
        seen.append(line)
        if "unreachable" in line:
            break
    server.start()  # a restart within the patience
    out, err = proc.communicate(timeout=300)
    out = "".join(seen) + out
    assert proc.returncode == 0, out + err
    waits = [line for line in (out + err).splitlines() if "unreachable" in line]
    assert waits and all("retrying in" in line and "postgres:***@" in line for line in waits), out + err
    assert "s3cret-pw" not in out + err
    trials = _study(server.url, name).get_trials()
    _assert_exactly(trials, 2)
    # Nothing trained twice, no epoch report lost: two trials, each complete with all its epochs.
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert all(sorted(t.intermediate_values) == list(range(1, EPOCHS + 1)) for t in trials)
    assert not any("retry_history" in t.system_attrs for t in trials)
    assert trials[in_flight.number].user_attrs["epochs"] == EPOCHS


@pytest.mark.slow
def test_a_storage_outage_past_the_patience_exits_in_one_line_and_resumes(
    server: PostgresServer, tmp_path: Path
) -> None:
    name = unique_name("outage")
    args = [*FAULT, f"study.name={name}", f"search.storage={server.url}"]
    proc = start_search([*args, "search.storage_patience=3"], tmp_path)
    in_flight = _mid_trial(proc, server.url, name)
    server.stop()
    out, err = proc.communicate(timeout=300)
    last = err.strip().splitlines()[-1]
    assert proc.returncode == STORAGE_EXIT_CODE, out + err
    assert last.startswith("error: search.storage='postgresql+psycopg://postgres:***@127.0.0.1:"), last
    assert "past search.storage_patience=3" in last and "run the same command again" in last
    assert "Traceback" not in err and "s3cret-pw" not in out + err
    server.start()
    run_search(args, tmp_path)  # the resume
    trials = _study(server.url, name).get_trials()
    _assert_exactly(trials, 2)
    stuck = trials[in_flight.number]
    assert stuck.state == TrialState.FAIL and "status" not in stuck.user_attrs  # recovered, not counted
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == stuck.number)
    assert retry.state == TrialState.COMPLETE and retry.params == stuck.params
    assert retry.user_attrs["resumed_from"]["epoch"] >= 1  # from its checkpoint, not from scratch


@pytest.mark.slow
def test_submitits_requeue_goes_on_from_the_epoch_the_job_stopped_at(tmp_path: Path) -> None:
    """The SLURM launcher's protocol, run locally (hydra/launcher=submitit_local): submitit's
    preemption signal (USR2) checkpoints the job and requeues it; the trial in flight is saved at
    its last finished epoch and handed back, and the requeued job resumes it from there."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    url = storage_url("sqlite", tmp_path)
    name = unique_name("requeue")
    settings = [*FAULT, f"study.name={name}", f"search.storage={url}", "search.checkpoint_seconds=null"]
    # One job whose study is `name`: every setting kept out of the job's folder name and study name.
    keys = ",".join(dict.fromkeys(a.partition("=")[0] for a in [*DIGITS, *settings]))
    launcher = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=30"]
    launcher.append(f"hydra.job.config.override_dirname.exclude_keys=[{keys}]")
    proc = start_search(["-m", *launcher, *settings], tmp_path)
    in_flight = _mid_trial(proc, url, name)
    pid = int(in_flight.user_attrs["worker"].rpartition(":")[2])  # the job's process, under submitit
    os.kill(pid, signal.SIGUSR2)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    trials = _study(url, name).get_trials()
    _assert_exactly(trials, 2)
    handed_back = trials[in_flight.number]
    assert handed_back.state == TrialState.FAIL and "status" not in handed_back.user_attrs
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == in_flight.number)
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["worker"] != in_flight.user_attrs["worker"]
    reported = len(handed_back.intermediate_values)
    # submitit's requeue (a SystemExit) lands at any line: at the latest epoch reported, or one
    # later when it came between that epoch's saved state and its report; never an earlier one
    resumed = retry.user_attrs["resumed_from"]
    assert resumed["trial"] == in_flight.number and reported >= 1
    assert resumed["epoch"] in (reported, reported + 1), (resumed, reported)
