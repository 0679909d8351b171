"""The aging-evolution sampler: parents by tournament among the newest trained networks (never an
over-budget, duplicate or failed one), children that differ from their parent in one decision,
read from the storage so that workers and resumed studies share one population."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import create_trial

from search.optimize.evolution import EvolutionSampler
from search.optimize.status import Status

DISTRIBUTIONS = {
    "kind": CategoricalDistribution(["a", "b", "c"]),
    "n": IntDistribution(1, 3),
    "width": FloatDistribution(0.5, 2.0),
}


def _objective(trial: optuna.Trial) -> float:
    kind = trial.suggest_categorical("kind", ["a", "b", "c"])
    n = trial.suggest_int("n", 1, 3)
    width = trial.suggest_float("width", 0.5, 2.0)
    extra = trial.suggest_float("extra", 0.0, 1.0) if n == 3 else 0.0  # a conditional decision
    trial.set_user_attr("status", Status.COMPLETE)
    return {"a": 0.0, "b": 0.5, "c": 1.0}[kind] + n / 3 - abs(width - 1.2) + extra / 10


def test_children_differ_from_a_trained_parent_in_one_decision() -> None:
    sampler = EvolutionSampler(population=6, tournament=3, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(_objective, n_trials=40)
    trials = study.get_trials()
    for child in trials[6:]:
        shared = [
            t
            for t in trials[: child.number]
            if sum(t.params.get(k) != v for k, v in child.params.items() if k in t.params and k != "extra") <= 1
            and all(k in child.params for k in ("kind", "n", "width"))
        ]
        assert shared, f"trial {child.number} {child.params} is no one-decision mutation of an earlier trial"
    assert len({tuple(sorted(t.params.items())) for t in trials}) > 20  # it explores, it does not copy
    best_random = max(t.value for t in trials[:6])
    assert study.best_value >= best_random  # evolution keeps the best it found


def _trial(number_value: float, status: Status, kind: str) -> optuna.trial.FrozenTrial:
    return create_trial(
        value=number_value,
        params={"kind": kind, "n": 2, "width": 1.0},
        distributions=DISTRIBUTIONS,
        user_attrs={"status": status},
    )


def test_only_trained_networks_among_the_newest_are_parents() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial(0.99, Status.COMPLETE, "a"))  # the oldest: aged out of a population of 4
    for i in range(4):
        study.add_trial(_trial(0.5 + i / 100, Status.COMPLETE, "b"))
    study.add_trial(_trial(5.0, Status.INFEASIBLE, "c"))  # over the budget: never a parent
    study.add_trial(_trial(4.0, Status.DUPLICATE, "c"))
    sampler = EvolutionSampler(population=4, tournament=4, seed=1)
    for _ in range(20):
        parent, mutated = sampler._plan(study)  # type: ignore[misc]
        assert parent.params["kind"] == "b" and parent.value == pytest.approx(0.53)  # the best of the newest 4
        assert mutated in DISTRIBUTIONS
    assert EvolutionSampler(population=10, tournament=3)._plan(study) is None  # too few: random


def test_tournament_must_fit_the_population() -> None:
    with pytest.raises(ValueError, match=r"tournament=5: must be in \[1, population=4\]"):
        EvolutionSampler(population=4, tournament=5)


def test_another_worker_or_a_resume_breeds_from_the_stored_population(tmp_path) -> None:
    """The sampler keeps no state of its own: a second worker, or the same command resumed, reads
    the population from the storage and breeds from it at once, with no random start-up of its own."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = optuna.create_study(
        study_name="e", storage=url, direction="maximize", sampler=EvolutionSampler(population=4, tournament=2, seed=0)
    )
    first.optimize(_objective, n_trials=6)
    resumed = EvolutionSampler(population=4, tournament=2, seed=1)
    second = optuna.load_study(study_name="e", storage=url, sampler=resumed)
    second.optimize(_objective, n_trials=3)
    trials = second.get_trials()
    for child in trials[6:]:
        newest = [t for t in trials[: child.number] if t.number >= child.number - 4]
        core = ("kind", "n", "width")
        assert any(sum(t.params[k] != child.params[k] for k in core) <= 1 for t in newest), child.params
