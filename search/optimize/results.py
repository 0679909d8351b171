"""What a study keeps on disk besides its storage: the best trial's weights and the checkpoints
that retries resume from, one file per trial number in each folder.

The study decides which trial is best (`best_trial`, read from the storage); files of any other
finished trial are deleted once they can no longer matter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from search.optimize.status import is_trained
from space.genotype import Genotype
from space.io import atomic_path

__all__ = [
    "CONFIRMED_ATTR",
    "best_of",
    "best_trial",
    "checkpoints_dir",
    "confirmed_dir",
    "confirmed_summary",
    "top_trials",
    "drop_orphan_checkpoints",
    "keep_best_weights",
    "save_trial_file",
    "save_weights_file",
    "trial_file",
    "weights_dir",
]


# The study attribute holding the confirmation's outcome (search/optimize/confirm.py).
CONFIRMED_ATTR = "confirmed"


def weights_dir(study_dir: Path) -> Path:
    return study_dir / "weights"


def confirmed_dir(study_dir: Path) -> Path:
    """The confirmed best's weights, trained at the confirmation fidelity (search/optimize/confirm.py)."""
    return study_dir / "confirmed"


def checkpoints_dir(study_dir: Path) -> Path:
    return study_dir / "checkpoints"


def trial_file(directory: Path, number: int) -> Path:
    """`trial-0007.pt`: a trial's weights (in `weights/`) or its checkpoint (in `checkpoints/`)."""
    return directory / f"trial-{number:04d}.pt"


def save_weights_file(path: Path, genotype: Genotype, **payload: Any) -> Path:
    """Save `payload` with the genotype that makes it usable (nanoGPT-style: the network can always
    be rebuilt from the file alone), written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"key": genotype.key, "genotype": genotype.to_dict(), **payload}, tmp)
    return path


def save_trial_file(directory: Path, number: int, genotype: Genotype, **payload: Any) -> Path:
    """A trial's weights or checkpoint, `trial_file(directory, number)`."""
    return save_weights_file(trial_file(directory, number), genotype, trial=number, **payload)


def best_of(trials: list[FrozenTrial]) -> FrozenTrial | None:
    """The best trained trial (ties: the earlier one); infeasible and duplicate trials never."""
    done = [t for t in trials if is_trained(t)]
    return max(done, key=lambda t: (t.value, -t.number)) if done else None


def top_trials(trials: list[FrozenTrial], k: int) -> list[FrozenTrial]:
    """The `k` best trained trials by search value, best first (ties: the earlier one)."""
    return sorted((t for t in trials if is_trained(t)), key=lambda t: (-t.value, t.number))[:k]  # type: ignore[operator]


def confirmed_summary(study: optuna.Study, trials: list[FrozenTrial] | None = None) -> dict[str, Any] | None:
    """The confirmation of the study's current top-k (search/optimize/confirm.py), or None where
    there is none or the search has since changed its top-k (a resumed, longer search)."""
    summary = study.user_attrs.get(CONFIRMED_ATTR)
    if not summary:
        return None
    trials = trials if trials is not None else study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    current = [t.number for t in top_trials(trials, int(summary["top_k"]))]
    return summary if current == summary["trials"] else None


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The study's best: its confirmed best where the top-k was confirmed at a higher fidelity,
    else the best search value."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    summary = confirmed_summary(study, trials)
    if summary is not None:
        return next(t for t in trials if t.number == summary["best"])
    return best_of(trials)


def keep_best_weights(study: optuna.Study, study_dir: Path) -> None:
    """Delete saved weights of every finished trial but the best (running trials keep theirs).
    One snapshot of the trials: a trial completing between two reads must not lose its file."""
    trials = study.get_trials(deepcopy=False)
    best = best_of(trials)
    running = {t.number for t in trials if t.state == TrialState.RUNNING}
    for path in weights_dir(study_dir).glob("trial-*.pt"):
        number = int(path.stem.removeprefix("trial-"))
        if number not in running and (best is None or number != best.number):
            path.unlink(missing_ok=True)


def drop_orphan_checkpoints(study: optuna.Study, study_dir: Path) -> None:
    """Once nothing runs or waits, no retry can resume from a checkpoint: delete what is left
    (a retry that lost the race for a slot, ran out of retries or was a duplicate)."""
    if any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in study.get_trials(deepcopy=False)):
        return
    for path in checkpoints_dir(study_dir).glob("trial-*.pt"):
        path.unlink(missing_ok=True)
