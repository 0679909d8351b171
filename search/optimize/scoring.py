"""One candidate of a supernet search (search.strategy=supernet): drawn, budgeted and checked
for duplicates exactly as a trained trial (search/optimize/objective.py), then scored through
the supernet in a fraction of a second instead of trained.

The score is the trial's value, so every sampler learns from it as from a trained accuracy, and
the trial is stored like any other (genotype, cost, status) plus `scored_by` (the supernet's
key) and `score_seconds`. No W&B run per candidate: the search logs them as one table.
"""

from __future__ import annotations

import time
from typing import Any

import optuna

from search.optimize.objective import Objective, TrialFailed
from search.optimize.status import Status
from search.training.supernet import Scorer
from space.accounting import Cost
from space.genotype import Genotype

__all__ = ["ScoreObjective"]


class ScoreObjective(Objective):
    """`Objective` with the training replaced by a supernet's score."""

    def __init__(self, *, scorer: Scorer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scorer = scorer

    def _train(self, trial: optuna.Trial, genotype: Genotype, values: dict[str, Any], c: Cost, start: float) -> float:
        refusal = self.scorer.refusal(genotype)
        if refusal is not None:
            trial.set_user_attr("status", Status.FAILED)
            trial.set_user_attr("fail_reason", refusal)
            raise TrialFailed(refusal)
        began = time.perf_counter()
        value = float(self.scorer(genotype))
        trial.set_user_attr("status", Status.COMPLETE)
        trial.set_user_attr("scored_by", self.scorer.key)
        trial.set_user_attr("score_seconds", time.perf_counter() - began)
        return value
