"""The best confirmed at a higher fidelity: after the search, its top-k networks and the hand
design are retrained with more images, more epochs and other seeds (`search.confirm`), and the
study's best is the top-k network with the best mean validation accuracy there.

Why: one run of the search's objective is about as noisy as the spread between networks (the
README's noise benchmark), so the search's ranking names its luckiest network as often as its
best. Every confirmation run is a study attribute keyed by its run key, written when it ends: a
resumed confirmation never trains a finished run again, and any worker or machine sees them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import statistics
from collections.abc import Iterator
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from search.config.params import apply_values
from search.config.schema import Config, ConfigError, LoggerConfig
from search.data.sources import load_data
from search.data.splits import Splits
from search.optimize.results import (
    CONFIRMED_ATTR,
    confirmed_dir,
    save_trial_file,
    top_trials,
    trial_file,
)
from search.optimize.status import hand_design
from search.training import interrupt
from search.training.network import run_key, train_network
from search.training.predict import model_card
from search.training.tracking import Tracker
from search.training.trainer import Trainer
from space.genotype import Genotype

__all__ = ["RUN_PREFIX", "confirm", "confirmation_config", "mean_and_spread"]

log = logging.getLogger(__name__)

RUN_PREFIX = "confirm:"  # + run key: one confirmation run's record on the study


@dataclass(frozen=True)
class _Network:
    trial: FrozenTrial
    genotype: Genotype
    own: Config  # the trial's own config at the confirmation fidelity


def confirmation_config(cfg: Config) -> Config:
    """`cfg` at the confirmation fidelity: search.confirm's epochs and training images."""
    c = cfg.search.confirm
    train = dataclasses.replace(cfg.train, epochs=c.epochs or cfg.train.epochs)
    data = dataclasses.replace(cfg.data, subset=c.subset or cfg.data.subset, val_epoch_size=None)
    return dataclasses.replace(cfg, train=train, data=data)


def check_fidelity(cfg: Config, data: Splits) -> None:
    """Where the search trains on all images (data.subset null), a search.confirm.subset smaller
    than the pool they come from would confirm on fewer images than the search trained on: one
    line, before anything trains. (With data.subset set, the config check compares the two.)"""
    c = cfg.search.confirm
    if not c.top_k or c.subset is None or cfg.data.subset is not None:
        return
    pool = len(data.train) if cfg.data.val_size is not None else len(data.train) + len(data.val)
    if c.subset < pool:
        raise ConfigError(
            f"search.confirm.subset={c.subset}: below the search's {pool} images (data.subset=null: all of them); "
            "confirmation cannot be a lower fidelity (null: the search's images)"
        )


def mean_and_spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _networks(study: optuna.Study, cfg: Config) -> tuple[list[_Network], _Network | None]:
    """The top-k by search value and the hand design (the warm-start trial), each with its config."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    high = confirmation_config(cfg)

    def network(t: FrozenTrial) -> _Network:
        return _Network(
            t, Genotype.from_dict(t.user_attrs["genotype"]), apply_values(high, t.user_attrs["hyperparameters"])
        )

    hand = hand_design(trials, complete=True)  # the warm-start trial, or its retry
    return [network(t) for t in top_trials(trials, cfg.search.confirm.top_k)], network(hand) if hand else None


@dataclass(frozen=True)
class _Job:
    """One confirmation run to train, as a worker process receives it."""

    network: _Network
    seed: int
    key: str
    threads: int
    keep: bool  # its weights saved in confirmed/ (the first seed of a top-k network)
    directory: Path  # the study's folder
    logger: LoggerConfig
    study: str


_LOADED: dict[str, Splits] = {}  # this process's data, by its config


def confirm(
    study: optuna.Study, cfg: Config, directory: Path, *, data: Splits | None = None, processes: int = 1
) -> dict[str, Any] | None:
    """Confirm the study's top-k (search.confirm) and store the outcome on the study
    (results.CONFIRMED_ATTR); the confirmed best's weights from its first seed stay in
    `confirmed/`. Runs already recorded are read, not trained; the others train in `processes`
    processes sharing the cores, each run's record written as it ends. `data`: the search's
    splits, reused where the confirmation reads the same. None when confirmation is off or
    nothing was trained."""
    c = cfg.search.confirm
    top, hand = _networks(study, cfg)
    if not c.top_k or not top:
        return None
    if data is not None and confirmation_config(cfg).data == cfg.data:
        _LOADED[repr(cfg.data)] = data
    top_numbers = {n.trial.number for n in top}
    networks = top + ([hand] if hand is not None and hand.trial.number not in top_numbers else [])
    jobs, records = [], {}
    for n in networks:
        for i, seed in enumerate(c.seeds):
            key = RUN_PREFIX + run_key(n.genotype, dataclasses.replace(n.own.train, seed=seed), n.own.data, seed)
            keep = i == 0 and n.trial.number in top_numbers  # the first seed's weights, should it be the best
            records[key] = study.user_attrs.get(key)
            if records[key] is None or (keep and _missing_best(study, n, directory)):
                jobs.append((n, seed, key, keep))
    processes = max(1, min(processes, len(jobs)))
    threads = cfg.train.threads or max(1, (os.cpu_count() or 1) // processes)  # the search's workers are done
    todo = [_Job(n, seed, key, threads, keep, directory, cfg.logger, study.study_name) for n, seed, key, keep in jobs]
    try:
        for job, record in _trained(todo, processes):
            study.set_user_attr(job.key, record)
            records[job.key] = record
            value = record["val_accuracy"]
            shown = f"{value:.4f}" if value is not None else record.get("fail_reason")
            log.info(
                "confirm trial %d (%s) seed %d: val %s, %.1f s",
                job.network.trial.number,
                job.network.genotype.key,
                job.seed,
                shown,
                record["seconds"],
            )
    except (interrupt.PoliteStop, interrupt.StopNow) as stop:  # each run is stored as it ends
        kept = sum(r is not None for r in records.values())
        raise interrupt.told(
            stop,
            f"the search is complete and {kept} of {len(records)} confirmation runs are stored; the same command "
            "trains only the others",
        ) from None
    values: dict[int, list[float]] = {}
    for record in records.values():
        if record["val_accuracy"] is not None:
            values.setdefault(record["trial"], []).append(record["val_accuracy"])
    seconds = sum(record["seconds"] for record in records.values())
    return _summarise(study, cfg, top, hand, values, seconds, directory)


def _trained(jobs: list[_Job], processes: int) -> Iterator[tuple[_Job, dict[str, Any]]]:
    """Each job with its record, as the runs end: here, or in fresh processes (spawned, as the
    search's workers are: CUDA and OpenMP state is not forked)."""
    if processes == 1:
        yield from ((job, _train(job)) for job in jobs)
        return
    with interrupt.process_pool(processes) as pool:
        futures = {pool.submit(_train, job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _train(job: _Job) -> dict[str, Any]:
    """Train one confirmation run; its record (validation accuracy None where it failed)."""
    n = job.network
    torch.set_num_threads(job.threads)
    if repr(n.own.data) not in _LOADED:
        _LOADED[repr(n.own.data)] = load_data(n.own.data)
    data = _LOADED[repr(n.own.data)]
    train = dataclasses.replace(n.own.train, seed=job.seed, threads=job.threads)
    trainer = Trainer(train, data, augment=n.own.data.augment)
    run = Tracker(job.logger, study=job.study, directory=job.directory).start(
        name=f"confirm-{n.trial.number:04d}-{n.genotype.key}-s{job.seed}",
        config={
            "trial": n.trial.number,
            "genotype": n.genotype.to_dict(),
            "genotype_key": n.genotype.key,
            "fidelity": "confirm",
            "seed": job.seed,
            "train": dataclasses.asdict(train),
            "data": dataclasses.asdict(n.own.data),
            "hyperparameters": n.trial.user_attrs["hyperparameters"],
        },
    )
    with run.preempted_on_stop():
        trained = train_network(
            n.genotype, trainer, seed=job.seed, on_epoch=lambda r: run.log(r.metrics(), step=r.epoch)
        )
    value = trained.val_accuracy
    record = {"trial": n.trial.number, "seed": job.seed, "val_accuracy": value, "seconds": trained.seconds}
    if value is None:
        record["fail_reason"] = trained.fail_reason
    run.finish({**record, "state": "complete" if value is not None else "failed"}, failed=value is None)
    if job.keep and trained.model is not None:
        state = {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}
        save_trial_file(
            confirmed_dir(job.directory),
            n.trial.number,
            n.genotype,
            val_accuracy=value,
            state_dict=state,
            **model_card(data),
        )
    return record


def _missing_best(study: optuna.Study, n: _Network, directory: Path) -> bool:
    """The confirmed best's weights are gone (a longer search deleted them): train its first seed again."""
    summary = study.user_attrs.get(CONFIRMED_ATTR) or {}
    return summary.get("best") == n.trial.number and not trial_file(confirmed_dir(directory), n.trial.number).is_file()


def _summarise(
    study: optuna.Study,
    cfg: Config,
    top: list[_Network],
    hand: _Network | None,
    values: dict[int, list[float]],
    seconds: float,
    directory: Path,
) -> dict[str, Any] | None:
    """The confirmed ranking on the study; the best's weights kept, the others' deleted."""
    confirmed = [n.trial.number for n in top if values.get(n.trial.number)]
    if not confirmed:
        log.warning("confirmation: every run failed; the study's best stays the search's")
        return None
    best = max(confirmed, key=lambda number: (mean_and_spread(values[number])[0], -number))
    c = cfg.search.confirm
    summary = {
        "top_k": c.top_k,
        "trials": [n.trial.number for n in top],
        "best": best,
        "hand": hand.trial.number if hand is not None else None,
        "values": {str(number): v for number, v in values.items()},
        "seconds": seconds,
        "fidelity": {
            "epochs": top[0].own.train.epochs,
            "subset": top[0].own.data.subset,
            "seeds": list(c.seeds),
        },
    }
    study.set_user_attr(CONFIRMED_ATTR, summary)
    for path in confirmed_dir(directory).glob("trial-*.pt"):
        if path != trial_file(confirmed_dir(directory), best):
            path.unlink(missing_ok=True)
    return summary
