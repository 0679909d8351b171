"""Open a study: its storage, sampler and pruner, and the identity check on resume.

Resuming is running the same command again: the study is loaded from its storage, finished
trials count towards `search.n_trials`, and the sampler is re-seeded with the seed plus the
number of trials so far, so a resumed random search does not replay its first proposals. A
study refuses trials of another space, budget, data or training setup (`identity`).
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from pathlib import Path
from typing import Any

import optuna

from search.config.credentials import mask_credentials
from search.config.params import SearchedParam, parse_params
from search.config.schema import Config, ConfigError, training_identity
from search.optimize.evolution import EvolutionSampler
from search.optimize.storage import open_storage, storage_url

__all__ = ["CONSTRAINTS_ATTR", "open_study", "stored_constraints"]

# The user attribute where the objective leaves a trial's constraint values (keys "0", "1", ...
# in the order of `search.budget.constraints.constraints`; <= 0 is feasible).
CONSTRAINTS_ATTR = "constraint_values"


def stored_constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
    """The samplers' public `constraints_func`: after each complete or pruned trial the sampler
    stores these values as the system attribute `constraints`, the one format every reader
    understands: Optuna 5's samplers and plots (`trial.constraints`) and optuna-dashboard 0.21,
    which does not read the `constraints:<name>` keys `Trial.set_constraint` writes."""
    return list(trial.user_attrs.get(CONSTRAINTS_ATTR, []))


# The parts of a config that define what a study's trials mean: a resumed study must agree.
_IDENTITY = ("space", "budget", "data", "train")  # and search.params (`_identity`)


def _sampler(cfg: Config, offset: int) -> optuna.samplers.BaseSampler:
    s = cfg.search
    seed = s.seed + offset  # offset: trials so far and the worker index, so no two streams repeat
    # budget.mode=prune hides why a network was stopped, so it records no constraints.
    constrained = {"constraints_func": stored_constraints} if cfg.budget.mode != "prune" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)  # constraints_func: see stored_constraints
        if s.sampler == "random" and not constrained:
            return optuna.samplers.RandomSampler(seed=seed)
        if s.sampler == "random":  # TPE's start-up phase, never left: RandomSampler(seed)'s very draws
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=sys.maxsize, **constrained)
        if s.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, s.n_startup_trials), **constrained)
        if s.sampler == "evolution":
            return EvolutionSampler(population=s.population, tournament=s.tournament, seed=seed, **constrained)
        if s.sampler == "tpe-multivariate":  # joint densities over conditional groups; workers spread apart
            return optuna.samplers.TPESampler(
                seed=seed,
                n_startup_trials=s.n_startup_trials,
                multivariate=True,
                group=True,
                constant_liar=True,
                **constrained,
            )
        if s.sampler == "gp":
            return optuna.samplers.GPSampler(
                seed=seed, n_startup_trials=s.n_startup_trials, warn_independent_sampling=False, **constrained
            )
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.n_startup_trials, **constrained)


def _pruner(cfg: Config, params: tuple[SearchedParam, ...]) -> optuna.pruners.BasePruner:
    # A searched train.epochs: its largest value is the most a trial trains.
    epochs = max([cfg.train.epochs, *(v for p in params if p.key == "train.epochs" for v in p.extremes())])
    if cfg.search.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=max(1, cfg.search.n_startup_trials // 2), n_warmup_steps=max(1, epochs // 3)
        )
    if cfg.search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    return optuna.pruners.NopPruner()


def _identity(cfg: Config, params: tuple[SearchedParam, ...]) -> dict[str, Any]:
    identity = {name: dataclasses.asdict(getattr(cfg, name)) for name in _IDENTITY}
    identity["train"] = training_identity(cfg.train)
    identity["params"] = {p.key: p.expression for p in params}  # canonical: spacing never matters
    if not cfg.search.warm_start:  # a searched key's configured value then trains no trial
        for p in params:
            group, name = p.key.split(".", 1)
            identity[group].pop(name, None)
    return identity


def _first_difference(stored: Any, current: Any, path: str) -> tuple[str, Any, Any] | None:
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in sorted(set(stored) | set(current)):
            found = _first_difference(stored.get(key), current.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    if isinstance(stored, list) and isinstance(current, list) and len(stored) == len(current):
        for i, (a, b) in enumerate(zip(stored, current)):
            found = _first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if stored == current else (path, stored, current)


def _connect(cfg: Config, url: str) -> tuple[optuna.storages.BaseStorage, set[str]]:
    """The storage at `url` and the names of its studies (the first query, so a storage that
    cannot be reached fails here, as one ConfigError line)."""
    try:
        storage = open_storage(
            url,
            heartbeat_interval=cfg.search.heartbeat_interval,
            grace_period=cfg.search.grace_period,
            max_retry=cfg.search.max_retry,
            patience=cfg.search.storage_patience,
        )
        names = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    except Exception as err:
        reason = mask_credentials(str(err).strip().splitlines()[0]) if str(err).strip() else ""
        raise ConfigError(
            f"search.storage={mask_credentials(url)!r}: cannot be opened ({err.__class__.__name__}: {reason[:160]})"
        ) from None
    return storage, names


def _check_identity(stored: dict[str, Any] | None, identity: dict[str, Any], where: str) -> None:
    """A resumed study must have been run with this config's space, budget, data and training."""
    diff = _first_difference(stored, identity, "") if stored is not None else None
    if diff is not None:
        field, old, new = diff
        field = f"search.{field}" if field.startswith("params") else field
        raise ConfigError(f"{field}={new!r}: {where} was run with {old!r}; use a new study.name or the same setting")


def open_study(
    cfg: Config, name: str, directory: Path, *, worker: int = 0
) -> tuple[optuna.Study, optuna.storages.BaseStorage]:
    """Create or load the study, and the storage it lives in; refuse to mix trials of a
    different space/budget/data/train. `worker` (this process's index among the study's
    workers) offsets the sampler's seed."""
    url = storage_url(cfg, directory)
    params = parse_params(cfg)
    identity = _identity(cfg, params)
    directory.mkdir(parents=True, exist_ok=True)
    storage, existing = _connect(cfg, url)
    n_existing = 0
    if name in existing:
        loaded = optuna.load_study(study_name=name, storage=storage)
        n_existing = len(loaded.get_trials(deepcopy=False))
        _check_identity(loaded.user_attrs.get("identity"), identity, f"study {name!r} in {mask_credentials(url)}")
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=_sampler(cfg, n_existing + 1009 * worker),
        pruner=_pruner(cfg, params),
        direction="maximize",
        load_if_exists=True,
    )
    if "identity" not in study.user_attrs:
        study.set_user_attr("identity", identity)
        study.set_user_attr("budget_macs", cfg.budget.macs)
        study.set_user_attr("budget_params", cfg.budget.params)
    return study, storage
