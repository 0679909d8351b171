"""Regularized (aging) evolution (Real et al., "Regularized Evolution for Image Classifier
Architecture Search", AAAI 2019) on Optuna's public sampler API.

The population is the `population` most recently finished trained networks of the study (so the
oldest leave it: aging), read from the storage at every trial, which is what makes the sampler
work with several workers and after a resume. A new trial draws `tournament` members of it at
random, takes the best as its parent and copies the parent's every decision but one, which it
draws anew (a different value where the decision has one). A decision the parent never made (a
branch the mutation opened) is drawn at random. Until the population is full, and whenever no
parent exists, trials are random. Networks over the budget, duplicates and failures are never
parents: only trials whose own training gave their value are.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from search.optimize.status import Status, status

__all__ = ["EvolutionSampler"]


class EvolutionSampler(BaseSampler):
    """Aging evolution: tournament selection among the newest `population` networks, one mutation."""

    def __init__(
        self,
        *,
        population: int = 10,
        tournament: int = 3,
        seed: int | None = None,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
    ) -> None:
        if not 1 <= tournament <= population:
            raise ValueError(f"tournament={tournament}: must be in [1, population={population}]")
        self.population = population
        self.tournament = tournament
        self._rng = np.random.RandomState(seed)
        # Random draws: RandomSampler's, or where there are constraints, TPE's never-ending start-up
        # phase (the same draws), whose after_trial stores each trial's constraints for Optuna
        # (best_trial, optuna-dashboard) through the public constraints_func.
        self._random: BaseSampler = (
            RandomSampler(seed=seed)
            if constraints_func is None
            else TPESampler(seed=seed, n_startup_trials=sys.maxsize, constraints_func=constraints_func)
        )
        self._plans: dict[int, tuple[FrozenTrial, str] | None] = {}  # trial number -> (parent, mutated name)

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}  # every decision is drawn where the network makes it (define-by-run, conditional)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._random.before_trial(study, trial)
        self._plans[trial.number] = self._plan(study)

    def _plan(self, study: Study) -> tuple[FrozenTrial, str] | None:
        """The parent by tournament among the newest trained networks, and the decision to mutate."""
        trained = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if status(t) == Status.COMPLETE and t.params
        ]
        if len(trained) < self.population:
            return None
        newest = sorted(trained, key=lambda t: (t.datetime_complete, t.number))[-self.population :]
        picked = [newest[i] for i in self._rng.choice(len(newest), self.tournament, replace=False)]
        parent = max(picked, key=lambda t: (t.value, -t.number))  # type: ignore[arg-type]
        names = sorted(parent.params)
        return parent, names[self._rng.randint(len(names))]

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        plan = self._plans.get(trial.number)
        if plan is None:
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        parent, mutated = plan
        inherited = parent.params.get(param_name)
        same_decision = param_name in parent.params and parent.distributions[param_name] == param_distribution
        if param_name != mutated and same_decision:
            return inherited
        if param_name == mutated and same_decision:
            return self._different(study, trial, param_name, param_distribution, inherited)
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def _different(
        self, study: Study, trial: FrozenTrial, name: str, distribution: BaseDistribution, current: Any
    ) -> Any:
        """A new value of one decision: another choice, or a fresh draw that differs (a few tries)."""
        if isinstance(distribution, CategoricalDistribution):
            others = [c for c in distribution.choices if c != current]
            return others[self._rng.randint(len(others))] if others else current
        for _ in range(8):
            value = self._random.sample_independent(study, trial, name, distribution)
            if value != current:
                return value
        return value

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._plans.pop(trial.number, None)
        self._random.after_trial(study, trial, state, values)
