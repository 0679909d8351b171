"""The study: storage, sampler, pruner, resume, the progress bar, and the final test.

Resuming is running the same command again: the study is loaded from its storage, finished
trials count towards `search.n_trials`, and the sampler is re-seeded with the seed plus the
number of trials so far, so a resumed random search does not replay its first proposals.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from search.budget import check_reachable
from search.config import Config, ConfigError, ranges_from_config, training_identity
from search.data import Splits, load_data
from search.objective import CATCH, Objective, Status, weights_path
from search.credentials import mask_credentials
from search.tracking import Tracker
from search.train import Trainer, resolve_device
from search.storage import open_storage, storage_url
from search.workers import heartbeat_enabled, recover_dead_local_trials, run_worker, tally
from space.genotype import Genotype
from space.io import resolve
from space.model import build_model

__all__ = ["StudyResult", "base_genotype", "best_trial", "keep_best_weights", "open_study", "run_study"]

log = logging.getLogger(__name__)

# The parts of a config that define what a study's trials mean: a resumed study must agree.
_IDENTITY = ("space", "budget", "data", "train")


@dataclass(frozen=True)
class StudyResult:
    study: optuna.Study
    directory: Path
    best_trial: optuna.trial.FrozenTrial | None
    test_accuracy: float | None


def base_genotype(cfg: Config, data: Splits) -> Genotype:
    """The base preset or genotype file, with config overrides and the data's shape."""
    shape = {"resolution": data.resolution, "in_channels": data.channels, "num_classes": data.num_classes}
    try:
        return resolve(cfg.space.base, **{**cfg.space.genotype, **shape})
    except ValueError as err:
        raise ConfigError(f"space.base={cfg.space.base!r}: {err}") from None


def _sampler(cfg: Config, offset: int) -> optuna.samplers.BaseSampler:
    s = cfg.search
    seed = s.seed + offset  # offset: trials so far and the worker index, so no two streams repeat
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if s.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if s.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, s.n_startup_trials))
        if s.sampler == "gp":
            return optuna.samplers.GPSampler(
                seed=seed, n_startup_trials=s.n_startup_trials, warn_independent_sampling=False
            )
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.n_startup_trials)


def _pruner(cfg: Config) -> optuna.pruners.BasePruner:
    if cfg.search.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=max(1, cfg.search.n_startup_trials // 2), n_warmup_steps=max(1, cfg.train.epochs // 3)
        )
    if cfg.search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=cfg.train.epochs)
    return optuna.pruners.NopPruner()


def _identity(cfg: Config) -> dict[str, Any]:
    identity = {name: dataclasses.asdict(getattr(cfg, name)) for name in _IDENTITY}
    identity["train"] = training_identity(cfg.train)
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


def open_study(cfg: Config, name: str, directory: Path, *, worker: int = 0) -> optuna.Study:
    """Create or load the study; refuse to mix trials of a different space/budget/data/train.
    `worker` (this process's index among the study's workers) offsets the sampler's seed."""
    url = storage_url(cfg, directory)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        storage = open_storage(
            url,
            heartbeat_interval=cfg.search.heartbeat_interval,
            grace_period=cfg.search.grace_period,
            max_retry=cfg.search.max_retry,
        )
        existing = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    except Exception as err:
        reason = mask_credentials(str(err).strip().splitlines()[0]) if str(err).strip() else ""
        raise ConfigError(
            f"search.storage={mask_credentials(url)!r}: cannot be opened ({err.__class__.__name__}: {reason[:160]})"
        ) from None
    n_existing = 0
    if name in existing:
        loaded = optuna.load_study(study_name=name, storage=storage)
        n_existing = len(loaded.get_trials(deepcopy=False))
        stored = loaded.user_attrs.get("identity")
        if stored is not None:
            diff = _first_difference(stored, _identity(cfg), "")
            if diff is not None:
                field, old, new = diff
                raise ConfigError(
                    f"{field}={new!r}: study {name!r} in {mask_credentials(url)} was run with {old!r}; "
                    "use a new study.name or the same setting"
                )
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=_sampler(cfg, n_existing + 1009 * worker),
        pruner=_pruner(cfg),
        direction="maximize",
        load_if_exists=True,
    )
    if "identity" not in study.user_attrs:
        study.set_user_attr("identity", _identity(cfg))
        study.set_user_attr("budget_macs", cfg.budget.macs)
        study.set_user_attr("budget_params", cfg.budget.params)
    return study


class _Progress:
    """Trials counted/total (all workers), best so far and ETA, on stderr (tqdm comes with Optuna)."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=done, desc="trials", unit="trial", disable=not enabled, dynamic_ncols=True)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        counted, _, _ = tally(study.get_trials(deepcopy=False))
        self.bar.update(max(0, min(counted, self.bar.total) - self.bar.n))
        best = best_trial(study)
        status = trial.user_attrs.get("status", trial.state.name.lower())
        self.bar.set_postfix_str(f"best {best.value:.4f}" if best else "best -", refresh=False)
        if not self.bar.disable:
            value = f", val {trial.value:.4f}" if status == Status.COMPLETE else ""
            self.bar.write(f"trial {trial.number}: {status}, {trial.user_attrs.get('macs', 0) / 1e6:.2f} MMACs{value}")

    def close(self) -> None:
        self.bar.close()


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best feasible, trained trial (duplicates point at their original)."""
    return _best(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _best(trials: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial | None:
    done = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.user_attrs.get("status") == Status.COMPLETE and t.value is not None
    ]
    return max(done, key=lambda t: (t.value, -t.number)) if done else None


def keep_best_weights(study: optuna.Study, directory: Path) -> None:
    """Delete saved weights of every finished trial but the best (running trials keep theirs).
    One snapshot of the trials: a trial completing between two reads must not lose its file."""
    trials = study.get_trials(deepcopy=False)
    best = _best(trials)
    running = {t.number for t in trials if t.state == TrialState.RUNNING}
    for path in (directory / "weights").glob("trial-*.pt"):
        number = int(path.stem.removeprefix("trial-"))
        if number not in running and (best is None or number != best.number):
            path.unlink(missing_ok=True)


def drop_orphan_checkpoints(study: optuna.Study, directory: Path) -> None:
    """Once nothing runs or waits, no retry can resume from a checkpoint: delete what is left
    (a retry that lost the race for a slot, ran out of retries or was a duplicate)."""
    if any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in study.get_trials(deepcopy=False)):
        return
    for path in (directory / "checkpoints").glob("trial-*.pt"):
        path.unlink(missing_ok=True)


def _test_best(study: optuna.Study, best: optuna.trial.FrozenTrial, trainer: Trainer, directory: Path) -> float | None:
    """Test accuracy of the best trial, measured once: stored on the study and reused."""
    done = study.user_attrs.get("test")
    if done and done.get("trial") == best.number:
        return float(done["accuracy"])
    path = weights_path(directory / "weights", best.number)
    if not path.is_file():
        log.warning("no saved weights for the best trial at %s: test accuracy not measured", path)
        return None
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    genotype = Genotype.from_dict(checkpoint["genotype"])
    if genotype.key != best.user_attrs.get("key"):
        log.warning("%s holds genotype %s, not the best trial's %s: test accuracy not measured", path, genotype.key, best.user_attrs.get("key"))
        return None
    model = build_model(genotype)
    model.load_state_dict(checkpoint["state_dict"])
    accuracy = trainer.evaluate(trainer.prepare(model), "test")
    study.set_user_attr("test", {"trial": best.number, "accuracy": accuracy})
    return accuracy


def worker_config(cfg: Config, index: int, n_workers: int) -> Config:
    """The config one of `n_workers` local workers trains with: its own GPU (round-robin over
    the visible devices) where the device is `auto` or `cuda`, and its share of the CPU threads."""
    train = cfg.train
    device = train.device
    if device in ("auto", "cuda") and torch.cuda.is_available():
        device = f"cuda:{index % torch.cuda.device_count()}"
    threads = train.threads
    if threads is None and n_workers > 1 and resolve_device(device).type == "cpu":
        threads = max(1, (os.cpu_count() or 1) // n_workers)
    return dataclasses.replace(cfg, train=dataclasses.replace(train, device=device, threads=threads))


def _run_worker(
    cfg: Config, name: str, directory: Path, index: int, progress: _Progress | None = None, data: Splits | None = None
) -> int:
    """Open the study and run trials until it holds `search.n_trials` counted trials."""
    data = data or load_data(cfg.data)
    base = base_genotype(cfg, data)
    study = open_study(cfg, name, directory, worker=cfg.search.worker * cfg.search.n_workers + index)
    trainer = Trainer(cfg.train, data, augment=cfg.data.augment)
    tracker = Tracker(cfg.logger, study=name, directory=directory)
    objective = Objective(
        cfg=cfg, base=base, trainer=trainer, tracker=tracker, study_dir=directory, storage=storage_url(cfg, directory)
    )
    callbacks: list[Any] = [lambda study, _trial: keep_best_weights(study, directory)]
    if progress is not None:
        callbacks.append(progress)
    return run_worker(study, objective, cfg.search.n_trials, catch=CATCH, callbacks=callbacks)


def _worker_process(cfg: Config, name: str, directory: str, index: int) -> None:
    """Entry point of a spawned local worker: its log goes to workers/worker-<index>.log."""
    path = Path(directory) / "workers" / f"worker-{index}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format=f"[%(asctime)s][worker {index}][%(name)s][%(levelname)s] - %(message)s",
        handlers=[logging.FileHandler(path), logging.StreamHandler()],
        force=True,
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        ran = _run_worker(worker_config(cfg, index, cfg.search.n_workers), name, Path(directory), index)
    except ConfigError as err:
        log.error("%s", err)
        raise SystemExit(2) from None
    log.info("worker %d ran %d trials", index, ran)


def _start_workers(cfg: Config, name: str, directory: Path) -> list[multiprocessing.process.BaseProcess]:
    """Workers 1..K-1 as fresh processes (spawn: no CUDA state or threads inherited)."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_process, args=(cfg, name, str(directory), i), name=f"worker-{i}", daemon=False)
        for i in range(1, cfg.search.n_workers)
    ]
    for process in processes:
        process.start()
    return processes


def run_study(cfg: Config, name: str, directory: Path) -> StudyResult:
    """Run (or resume, or join) the study until it holds `search.n_trials` counted trials, with
    `search.n_workers` local workers (this process is worker 0), then test the best trial and
    write the reports."""
    from search.report import write_results

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_data(cfg.data)
    check_reachable(cfg.budget, ranges_from_config(cfg.space), base_genotype(cfg, data))  # before any worker starts
    study = open_study(cfg, name, directory)
    recover_dead_local_trials(study, cfg.search.max_retry)
    counted, running, _ = tally(study.get_trials(deepcopy=False))
    log.info(
        "study %s: %d counted trials, %d running, %d to go with %d worker(s) here; storage %s",
        name,
        counted,
        running,
        max(0, cfg.search.n_trials - counted),
        cfg.search.n_workers,
        mask_credentials(storage_url(cfg, directory)),
    )
    if not heartbeat_enabled(study) and running:
        log.warning(
            "%d trial(s) RUNNING: live workers, or dead ones on other machines, which a storage without "
            "heartbeats cannot tell apart (an RDB storage with search.heartbeat_interval can)",
            running,
        )
    progress = _Progress(cfg.search.n_trials, min(counted, cfg.search.n_trials), cfg.progress)
    processes = _start_workers(cfg, name, directory) if counted < cfg.search.n_trials else []
    try:
        _run_worker(worker_config(cfg, 0, cfg.search.n_workers), name, directory, 0, progress, data)
    except BaseException:  # worker 0 failed or was interrupted: stop the others rather than wait
        for process in processes:
            process.terminate()  # their running trials are recovered on the next start
        raise
    finally:
        for process in processes:
            process.join()
        progress.close()
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        log.error("worker(s) %s exited with an error: see %s", ", ".join(failed), directory / "workers")
    study = open_study(cfg, name, directory)
    keep_best_weights(study, directory)
    drop_orphan_checkpoints(study, directory)
    trainer = Trainer(worker_config(cfg, 0, 1).train, data, augment=cfg.data.augment)
    best = best_trial(study)
    test_accuracy = _test_best(study, best, trainer, directory) if best else None
    write_results(
        study,
        directory,
        budget_macs=cfg.budget.macs,
        storage=mask_credentials(storage_url(cfg, directory)),
        best=best,
        test_accuracy=test_accuracy,
    )
    if failed:
        raise RuntimeError(f"worker(s) {', '.join(failed)} failed; see {directory / 'workers'}")
    return StudyResult(study=study, directory=directory, best_trial=best, test_accuracy=test_accuracy)
