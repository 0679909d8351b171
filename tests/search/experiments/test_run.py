"""The search log's line per finished trial: every outcome says what happened to the trial."""

from __future__ import annotations

import re

import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from search.experiments.run import trial_line
from search.optimize.status import Status, status

# what a reader of search.log (and tests/search/apps/test_logs.py) expects of each line
LINE = re.compile(r"^trial (\d+) (\w+), (?:(\d+\.\d\d) MMACs, )?(.+)$")


def _trial(state: TrialState, **attrs: object) -> FrozenTrial:
    values = {"value": 0.5} if state == TrialState.COMPLETE else {}
    intermediate = {1: 0.4} if attrs.pop("reported", False) else {}
    trial = create_trial(
        state=state,
        params={"x": 0.1},
        distributions={"x": FloatDistribution(0.0, 1.0)},
        user_attrs=attrs,
        intermediate_values=intermediate,
        **values,
    )
    trial.number = 7  # a trial of a study; create_trial leaves it unnumbered
    return trial


FINISHED = {
    Status.COMPLETE: _trial(TrialState.COMPLETE, status="complete", macs=1.5e6, epochs=2, train_seconds=3.0),
    Status.PRUNED: _trial(TrialState.PRUNED, status="pruned", macs=1.5e6, reported=True),
    Status.INFEASIBLE: _trial(TrialState.COMPLETE, status="infeasible", macs=3e6),
    Status.DUPLICATE: _trial(TrialState.COMPLETE, status="duplicate", duplicate_of=4, macs=1.5e6),
    Status.FAILED: _trial(TrialState.FAIL, status="failed", fail_reason="loss is NaN at epoch 1", macs=1.5e6),
    Status.LOST: _trial(TrialState.FAIL, macs=1.5e6, worker="host:1"),
    Status.SURPLUS: _trial(TrialState.FAIL, status="surplus", worker="host:1"),
}


@pytest.mark.parametrize("outcome", list(FINISHED))
def test_every_finished_outcome_has_a_line_that_says_what_happened(outcome: Status) -> None:
    trial = FINISHED[outcome]
    assert status(trial) == outcome
    m = LINE.match(trial_line(trial))
    assert m is not None, trial_line(trial)
    assert m[2] == outcome and m[4].strip()
    # the cost where the trial drew its network; a surplus trial ended before it drew one
    assert m[3] == (None if outcome == Status.SURPLUS else "1.50" if outcome != Status.INFEASIBLE else "3.00")


def test_the_lines_differ_between_outcomes() -> None:
    described = {LINE.match(trial_line(t))[4] for t in FINISHED.values()}
    assert len(described) == len(FINISHED)


def test_a_pruned_trial_names_its_last_value_and_epoch() -> None:
    assert "val 0.4000 when pruned after epoch 1" in trial_line(FINISHED[Status.PRUNED])
    bare = _trial(TrialState.PRUNED, status="pruned", macs=1e6)
    assert trial_line(bare).endswith("pruned before its first epoch")
