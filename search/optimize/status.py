"""The one vocabulary of trial outcomes, and what counts towards `search.n_trials`.

Optuna's states (COMPLETE, PRUNED, FAIL, RUNNING, WAITING) say too little for a budgeted search:
an over-budget network that was never trained and a trained one are both COMPLETE, and a trial
whose worker died is FAIL like one whose loss diverged. The objective and the worker loop store
the finer outcome as the user attribute "status"; `status` reads any trial back into one word.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "COUNTED",
    "UNTRAINED",
    "Status",
    "counts",
    "hand_design",
    "hand_design_outcome",
    "is_trained",
    "status",
    "tally",
]


class Status(StrEnum):
    COMPLETE = "complete"  # trained; its value is the final validation accuracy
    PRUNED = "pruned"  # stopped early by the pruner
    INFEASIBLE = "infeasible"  # over budget: never built, value 0.0 with its constraints stored
    DUPLICATE = "duplicate"  # the same genotype and hyperparameters as a trained trial: its value
    FAILED = "failed"  # a reason of its own (NaN loss, out of memory): counted, not retried
    LOST = "lost"  # its worker died: not counted, retried from its last checkpoint
    SURPLUS = "surplus"  # lost the race for the last slot: ended at once, not counted
    RUNNING = "running"
    WAITING = "waiting"  # a queued retry


def status(trial: FrozenTrial) -> Status:
    """The outcome of any trial, finished or not."""
    if trial.state == TrialState.RUNNING:
        return Status.RUNNING
    if trial.state == TrialState.WAITING:
        return Status.WAITING
    stored = trial.user_attrs.get("status")
    if trial.state == TrialState.FAIL:
        return Status(stored) if stored in (Status.FAILED, Status.SURPLUS) else Status.LOST
    return Status(stored) if stored in tuple(Status) else Status(trial.state.name.lower())


def is_trained(trial: FrozenTrial) -> bool:
    """A COMPLETE trial that really trained (not infeasible, not a duplicate), with a value."""
    return (
        trial.state == TrialState.COMPLETE
        and trial.user_attrs.get("status") == Status.COMPLETE
        and trial.value is not None
    )


# The outcomes that spent training compute: only these use up `search.n_trials`. Over-budget
# draws and duplicates cost milliseconds, so `search.n_trials=4` means four networks trained.
COUNTED = (Status.COMPLETE, Status.PRUNED, Status.FAILED)
UNTRAINED = (Status.INFEASIBLE, Status.DUPLICATE)


def counts(trial: FrozenTrial) -> bool:
    """Whether a finished trial uses one of the study's `n_trials`: it trained (or began to)."""
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) and status(trial) in COUNTED


def tally(trials: Sequence[FrozenTrial]) -> tuple[int, int, int]:
    """(counted, running, waiting) trials."""
    counted = sum(counts(t) for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    return counted, running, waiting


def spent_seconds(study: optuna.Study) -> float:
    """The training seconds a study has spent: its counted trials' and its pre-screen's (what
    `search.budget_seconds` caps and what anytime curves put on their x axis)."""
    trials = study.get_trials(deepcopy=False)
    trained = sum(float(t.user_attrs.get("train_seconds", 0.0)) for t in trials if counts(t))
    return trained + float(study.user_attrs.get("prescreen_seconds", 0.0))


def hand_design(trials: Sequence[FrozenTrial], *, complete: bool = False) -> FrozenTrial | None:
    """The hand design's trial (the warm start): the one that counted, else the newest of its
    retries. A stop hands a trial back as a copy that carries its attributes ("warm_start"
    among them), so the hand design may be any trial of that chain. With `complete`, only a
    hand design that trained to the end (None otherwise)."""
    chain = [t for t in trials if t.user_attrs.get("warm_start")]
    if not chain:
        return None
    hand = next((t for t in chain if counts(t)), max(chain, key=lambda t: t.number))
    return hand if not complete or status(hand) == Status.COMPLETE else None


def hand_design_outcome(hand: FrozenTrial) -> str:
    """Why the hand design has no value, in a phrase: its own failure, a retry still to run, or
    retries used up."""
    outcome = status(hand)
    if outcome == Status.FAILED:
        return f"failed on its own ({hand.user_attrs.get('fail_reason', 'no reason stored')}), so not retried"
    if outcome in (Status.WAITING, Status.RUNNING):
        return f"{outcome}: handed back after a stop; the same command trains it on from its checkpoint"
    if outcome == Status.LOST:
        tries = len(hand.system_attrs.get("retry_history", [])) + 1
        return (
            f"stopped {tries} time(s) without finishing, its retries used up (search.max_retry); the same "
            "command with a larger search.max_retry retries it"
        )
    return str(outcome)
