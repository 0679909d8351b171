"""Run a study to its end: open it once, recover what dead local workers left, run this process
and `search.n_workers - 1` spawned workers until `search.n_trials` trials have counted, confirm the
top-k at a higher fidelity (search.confirm), then test the best once on the held-out split and
write the reports.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.process
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from tqdm.contrib.logging import logging_redirect_tqdm

from search.budget.constraints import check_reachable, latency_table
from search.config.credentials import mask_credentials
from search.config.params import as_overrides
from search.config.schema import Config, ranges_from_config
from search.data.sources import load_data
from search.data.splits import Splits, base_genotype
from search.experiments.supernet import TrainedSupernet
from search.experiments.supernet_search import (
    candidates_config,
    candidates_dir,
    log_candidates,
    prepare_supernet,
    queue_top_candidates,
    score_objective,
    stand_alone_config,
)
from search.optimize.confirm import check_fidelity, confirm
from search.optimize.first_trials import enqueue_first_trials
from search.optimize.results import (
    best_trial,
    confirmed_dir,
    confirmed_summary,
    drop_orphan_checkpoints,
    keep_best_weights,
    save_weights_file,
    trial_file,
    weights_dir,
)
from search.optimize.status import Status, spent_seconds, status, tally
from search.optimize.storage import heartbeat_enabled, storage_url
from search.optimize.study import open_study
from search.optimize.workers import (
    ObjectiveFactory,
    recover_dead_local_trials,
    recover_hand_design,
    run_local_worker,
    seconds_spent,
    start_workers,
    trained_objective,
    worker_config,
)
from search.reports.study import write_results, write_trials_csv
from search.reports.supernet_search import candidates_name
from search.training.interrupt import PoliteStop
from search.training.trainer import Trainer
from space.genotype import Genotype
from space.model import build_model

__all__ = ["StudyResult", "run_study"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyResult:
    study: optuna.Study
    directory: Path
    best_trial: optuna.trial.FrozenTrial | None
    test_accuracy: float | None


def trial_line(trial: optuna.trial.FrozenTrial) -> str:
    """One finished trial as a log line: outcome, cost, accuracy, seconds."""
    outcome = status(trial)
    parts = [f"trial {trial.number} {outcome}"]
    if "macs" in trial.user_attrs:  # a trial ended before it drew its network (surplus) has no cost
        parts.append(f"{trial.user_attrs['macs'] / 1e6:.2f} MMACs")
    epochs = trial.user_attrs.get("epochs")
    if outcome == Status.COMPLETE and "scored_by" in trial.user_attrs:  # a supernet search's candidate
        parts.append(f"supernet score {trial.value:.4f}, {trial.user_attrs['score_seconds']:.2f} s")
    elif outcome == Status.COMPLETE:
        parts.append(f"val {trial.value:.4f} after {epochs} epochs")
    elif outcome == Status.PRUNED:
        step = max(trial.intermediate_values, default=None)
        parts.append(
            "pruned before its first epoch"
            if step is None
            else f"val {trial.intermediate_values[step]:.4f} when pruned after epoch {step}"
        )
    elif outcome == Status.INFEASIBLE:
        parts.append("over budget, not trained")
    elif outcome == Status.DUPLICATE:
        parts.append(f"same network and hyperparameters as trial {trial.user_attrs.get('duplicate_of')}, not trained")
    elif outcome == Status.SURPLUS:
        parts.append("started after the study had its trials, not trained and not counted")
    elif outcome == Status.LOST:
        parts.append("its worker stopped or died, not counted (a retry resumes from its last checkpoint)")
    elif outcome == Status.FAILED:
        parts.append(str(trial.user_attrs.get("fail_reason", "failed")))
    if epochs and trial.user_attrs.get("hyperparameters"):  # what it trained with
        parts.append(as_overrides(trial.user_attrs["hyperparameters"]))
    if trial.user_attrs.get("skipped_images"):
        parts.append(f"{trial.user_attrs['skipped_images']} undecodable image(s) skipped")
    seconds = trial.user_attrs.get("train_seconds")
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    return ", ".join(parts)


class _Progress:
    """One log line per finished trial, from every worker (the log file and the console), and a
    progress bar of counted trials with the best so far on stderr when it is a terminal (tqdm
    comes with Optuna); a log file or pipe never receives the bar's carriage-return frames."""

    def __init__(self, study: optuna.Study, total: int, done: int, enabled: bool, every: int = 1) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total,
            initial=done,
            desc="trials",
            unit="trial",
            dynamic_ncols=True,
            disable=not (enabled and sys.stderr.isatty()),
        )
        # Trials finished before this run (a resumed study) were logged by the run that had them.
        self.logged = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
        self.every = every  # a line per trial, or (a supernet search's candidates) per `every` trials
        self.counted = done  # a disabled bar (no terminal) counts nothing
        self._redirect = contextlib.ExitStack()
        if not self.bar.disable:  # every console log line (trials, epochs) printed above the bar
            self._redirect.enter_context(logging_redirect_tqdm(loggers=[logging.getLogger()], tqdm_class=tqdm))

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial | None = None) -> None:
        """Optuna's callback after each trial of this process; called once more at the end for
        what the spawned workers finished last."""
        trials = study.get_trials(deepcopy=False)
        for t in sorted((t for t in trials if t.state.is_finished()), key=lambda t: t.number):
            if t.number not in self.logged:
                self.logged.add(t.number)
                if self.every == 1 or status(t) not in (Status.COMPLETE, Status.DUPLICATE, Status.INFEASIBLE):
                    log.info("%s", trial_line(t))
        counted, _, _ = tally(trials)
        if self.every > 1 and counted // self.every > self.counted // self.every:
            best = best_trial(study)
            line = "%d of %d candidates scored, best %s"
            log.info(line, counted, self.bar.total, f"{best.value:.4f} (trial {best.number})" if best else "-")
        self.counted = counted
        self.bar.update(max(0, min(counted, self.bar.total) - self.bar.n))
        best = best_trial(study)
        self.bar.set_postfix_str(f"best {best.value:.4f}" if best else "best -")

    def close(self) -> None:
        self._redirect.close()
        self.bar.close()


def run_study(cfg: Config, name: str, directory: Path) -> StudyResult:
    """Run (or resume, or join) the study until it holds `search.n_trials` counted trials, with
    `search.n_workers` local workers (this process is worker 0), then test the best trial and
    write the reports."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_data(cfg.data)
    check_fidelity(cfg, data)
    base = base_genotype(cfg.space.base, cfg.space.genotype, data)
    found = latency_table(cfg, base)  # fitted here once, before any worker loads it
    table = found[0] if found else None
    check_reachable(cfg.budget, ranges_from_config(cfg.space), base, table)  # before any worker starts
    scored = _search_candidates(cfg, name, directory, data) if cfg.search.strategy == "supernet" else None
    if scored is not None:  # the stand-alone stage trains the top candidates and the hand design
        cfg = stand_alone_config(cfg, cfg.search.train_top_k)
    study, storage = open_study(cfg, name, directory, worker=cfg.search.worker * cfg.search.n_workers)
    recover_dead_local_trials(study, cfg.search.max_retry)
    recover_hand_design(study, cfg.search.max_retry)
    enqueue_first_trials(study, cfg, base, data, table)
    if scored is not None:
        cfg = stand_alone_config(cfg, queue_top_candidates(study, *scored))
    if "class_names" not in study.user_attrs:  # labels by name, with the study as in every weights file
        study.set_user_attr("class_names", list(data.class_names))
    counted, running, _ = tally(study.get_trials(deepcopy=False))
    url = mask_credentials(storage_url(cfg, directory))
    budget = cfg.search.budget_seconds
    log.info(
        "study %s: %d counted trials, %d running, %d to go%s with %d worker(s) here; storage %s",
        name,
        counted,
        running,
        max(0, cfg.search.n_trials - counted),
        "" if budget is None else f" or until {budget:.0f} training seconds are ({spent_seconds(study):.0f} done)",
        cfg.search.n_workers,
        url,
    )
    if not heartbeat_enabled(storage) and running:
        log.warning(
            "%d trial(s) RUNNING: live workers, or dead ones on other machines, which a storage without "
            "heartbeats cannot tell apart (an RDB storage with search.heartbeat_interval can)",
            running,
        )
    failed = _run_workers(cfg, name, directory, (study, storage), data, counted)
    keep_best_weights(study, directory)
    drop_orphan_checkpoints(study, directory)
    if not failed and cfg.search.worker == 0:  # one process confirms; a joining worker reads its result
        confirm(study, cfg, directory, data=data, processes=cfg.search.n_workers)
    best = best_trial(study)
    test_accuracy = None
    if best is not None:
        test_accuracy = _test_best(
            study, best, Trainer(worker_config(cfg, 0, 1).train, data, augment=cfg.data.augment), directory
        )
    write_results(study, directory, budget_macs=cfg.budget.macs, storage=url, best=best, test_accuracy=test_accuracy)
    if failed:
        raise RuntimeError(f"worker(s) {', '.join(failed)} failed; see {directory / 'workers'}")
    return StudyResult(study=study, directory=directory, best_trial=best, test_accuracy=test_accuracy)


def _search_candidates(
    cfg: Config, name: str, directory: Path, data: Splits
) -> tuple[optuna.Study, Config, TrainedSupernet, float]:
    """The supernet search's first stages (search/experiments/supernet_search.py): the supernet
    found or trained, then its candidates scored in their own study to `search.n_trials`. What
    queue_top_candidates needs after the study `name` is open."""
    cfg, trained = prepare_supernet(cfg, data)
    own, where = candidates_config(cfg, directory), candidates_dir(directory)
    study, storage = open_study(own, candidates_name(name), where, worker=cfg.search.worker * cfg.search.n_workers)
    recover_dead_local_trials(study, cfg.search.max_retry)
    counted, _, _ = tally(study.get_trials(deepcopy=False))
    start = time.perf_counter()
    failed = _run_workers(own, study.study_name, where, (study, storage), data, counted, objective_for=score_objective)
    if failed:
        raise RuntimeError(f"worker(s) {', '.join(failed)} failed; see {where / 'workers'}")
    write_trials_csv(study, where)
    if counted < own.search.n_trials:  # scored in this run: their table logged once
        log_candidates(own, study, where)
    return study, cfg, trained, time.perf_counter() - start


def _run_workers(
    cfg: Config,
    name: str,
    directory: Path,
    opened: tuple[optuna.Study, optuna.storages.BaseStorage],
    data: Splits,
    counted: int,
    objective_for: ObjectiveFactory = trained_objective,
) -> list[str]:
    """This process as worker 0 and the spawned ones beside it, to the end; the names of the
    spawned workers that failed."""
    every = 1 if objective_for is trained_objective else _CANDIDATES_PER_LINE
    progress = _Progress(opened[0], cfg.search.n_trials, min(counted, cfg.search.n_trials), cfg.progress, every)
    done = counted >= cfg.search.n_trials or seconds_spent(opened[0], cfg.search.budget_seconds)
    processes = [] if done else start_workers(cfg, name, directory, objective_for)
    try:
        run_local_worker(
            cfg, name, directory, 0, opened=opened, data=data, callbacks=[progress], objective_for=objective_for
        )
    except PoliteStop:  # SIGTERM or Ctrl-C: every worker hands its trial back
        _stop_workers(processes, grace=_WORKER_GRACE_SECONDS)
        raise
    except BaseException:  # worker 0 failed or was stopped at once: stop the others rather than wait
        _stop_workers(processes, grace=0.0)  # their running trials are recovered on the next start
        raise
    finally:
        for process in processes:
            process.join()
        progress(opened[0])
        progress.close()
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        log.error("worker(s) %s exited with an error: see %s", ", ".join(failed), directory / "workers")
    return failed


# A supernet search's candidates are logged a line per this many (and each failure), not one each.
_CANDIDATES_PER_LINE = 100

# How long spawned workers get to stop on their own after a polite stop of worker 0: a terminal's
# Ctrl-C and a job's SIGTERM reach them too, and each ends at its next batch; one that got
# nothing (a signal sent to worker 0's pid alone) is then sent SIGTERM.
_WORKER_GRACE_SECONDS = 10.0


def _stop_workers(processes: list[multiprocessing.process.BaseProcess], *, grace: float) -> None:
    """Wait up to `grace` seconds for the spawned workers to end, then SIGTERM the others (a
    polite stop, or a second signal for one already stopping: either hands its trial back)."""
    deadline = time.monotonic() + grace
    try:
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()


def _test_best(study: optuna.Study, best: optuna.trial.FrozenTrial, trainer: Trainer, directory: Path) -> float | None:
    """Test accuracy of the best trial, measured once: stored on the study and reused. The
    confirmed best is tested with its confirmation weights, the search's best with its own."""
    confirmed = confirmed_summary(study) is not None
    done = study.user_attrs.get("test")
    if done and done.get("trial") == best.number and bool(done.get("confirmed")) == confirmed:
        return float(done["accuracy"])
    path = trial_file(confirmed_dir(directory) if confirmed else weights_dir(directory), best.number)
    if not path.is_file():
        log.warning("no saved weights for the best trial at %s: test accuracy not measured", path)
        return None
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    genotype = Genotype.from_dict(checkpoint["genotype"])
    if genotype.key != best.user_attrs.get("key"):
        log.warning(
            "%s holds genotype %s, not the best trial's %s: test accuracy not measured",
            path,
            genotype.key,
            best.user_attrs.get("key"),
        )
        return None
    model = build_model(genotype)
    model.load_state_dict(checkpoint["state_dict"])
    accuracy = trainer.evaluate(trainer.prepare(model), "test")
    study.set_user_attr("test", {"trial": best.number, "accuracy": accuracy, "confirmed": confirmed})
    kept = {k: v for k, v in checkpoint.items() if k not in ("key", "genotype", "test_accuracy")}
    save_weights_file(path, genotype, **kept, test_accuracy=accuracy)  # the weights file carries it too
    return accuracy
