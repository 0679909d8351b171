"""One trial: sample -> budget -> build -> train -> report/prune -> log.

Nothing is built before the analytic cost says the network fits the budget, so no second of
compute goes to an over-budget network. Every trial stores its genotype, cost and status as user
attributes, so reports and resumed runs read everything from the study's storage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch

from search.budget.constraints import as_trained, constraints, latency_setting, latency_table
from search.config.credentials import mask_credentials
from search.config.params import apply_values, config_values, parse_params
from search.config.schema import Config, ranges_from_config
from search.optimize.first_trials import warm_start_genotype
from search.optimize.results import checkpoints_dir, save_trial_file, trial_file, weights_dir
from search.optimize.sample import TrialDraw, sample_trial
from search.optimize.status import Status, is_trained
from search.optimize.storage import StorageUnavailable
from search.optimize.study import CONSTRAINTS_ATTR
from search.training import interrupt
from search.training.interrupt import PoliteStop
from search.training.network import train_network
from search.training.predict import model_card
from search.training.tracking import Tracker, TrialRun
from search.training.trainer import EpochResult, Trainer, TrainState
from space.accounting import Cost, cost
from space.genotype import Genotype
from space.latency import LatencyCache

__all__ = ["CATCH", "Objective", "TrialFailed"]

log = logging.getLogger(__name__)


class TrialFailed(Exception):
    """A trial outcome, not a bug: the loss diverged or memory ran out. The trial fails with the
    reason stored and the study goes on; any other exception stops the study."""


CATCH: tuple[type[Exception], ...] = (TrialFailed,)

# Not the network's fault: Ctrl-C, SLURM preemption (it exits through SystemExit), or this trial
# already failed as stale by another worker. Such a trial gets no status, so it does not count,
# and its checkpoint stays for the retry that heartbeats or a restart queue.
_INTERRUPTIONS = (
    KeyboardInterrupt,
    SystemExit,
    PoliteStop,
    StorageUnavailable,
    optuna.exceptions.UpdateFinishedTrialError,
)


def _cost_attrs(c: Cost) -> dict[str, int]:
    return {"macs": c.macs, "params": c.params, "train_macs": c.train_macs, "train_params": c.train_params}


@dataclass
class _Training:
    """One trial's training in progress: what its end (complete, pruned, failed) writes back."""

    trial: optuna.Trial
    genotype: Genotype
    run: TrialRun
    summary: dict[str, Any]
    retried: list[int]  # trials this one retries: their checkpoints go when it ends
    epochs: int  # this trial's train.epochs (a searched key, perhaps)
    history: list[EpochResult] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)
    saved_epoch: int = 0  # the epoch of its checkpoint file (0: none)
    unsaved: TrainState | None = None  # the state after a later finished epoch, kept for a polite stop


class Objective:
    """Callable for `study.optimize`; returns the final validation accuracy (Polyak average)."""

    def __init__(
        self, *, cfg: Config, base: Genotype, trainer: Trainer, tracker: Tracker, study_dir: Path, storage: str = ""
    ) -> None:
        self.cfg = cfg
        self.base = base
        self.ranges = ranges_from_config(cfg.space)
        self.params = parse_params(cfg)
        found = latency_table(cfg, base)  # fitted by run_study before any worker starts
        self.latency = found[0] if found else None
        self.latency_cache = LatencyCache(found[1].parent / "measured.json") if found else None
        self.latency_setting = latency_setting(cfg)
        self.trainer = trainer
        self.tracker = tracker
        self.weights_dir = weights_dir(study_dir)
        self.checkpoints_dir = checkpoints_dir(study_dir)
        self.storage = mask_credentials(storage)

    def __call__(self, trial: optuna.Trial) -> float:
        start = time.perf_counter()
        genotype, values, c = self._sample(trial)
        if self._over_budget(trial, genotype, c):
            trial.set_user_attr("status", Status.INFEASIBLE)
            if self.cfg.budget.mode == "prune":
                raise optuna.TrialPruned("over budget")
            return 0.0  # never trained; the constraint marks it infeasible for samplers and best_trial
        duplicate = self._duplicate_of(trial, genotype.key, values)
        if duplicate is not None:
            trial.set_user_attr("status", Status.DUPLICATE)
            trial.set_user_attr("duplicate_of", duplicate.number)
            return float(duplicate.value)  # type: ignore[arg-type]
        return self._train(trial, genotype, values, c, start)

    # -- before training -------------------------------------------------------------------
    def _sample(self, trial: optuna.Trial) -> tuple[Genotype, dict[str, Any], Cost]:
        """The trial's genotype, the values of the searched settings ({"train.lr": ...}) and its cost."""
        if trial.user_attrs.get("warm_start"):  # the hand design with its recipe (search/optimize/first_trials.py)
            warm = warm_start_genotype(self.cfg, self.base)
            genotype = warm if warm is not None else self.base
            values = config_values(self.cfg, self.params)
        else:
            genotype, values = sample_trial(TrialDraw(trial), ranges=self.ranges, base=self.base, params=self.params)
            trained = as_trained(genotype, self.cfg.budget, divisor=self.ranges.width_step)
            if trained is not None:
                genotype, multiplier = trained
                if self.cfg.budget.mode == "project":
                    trial.set_user_attr("width_multiplier", multiplier)
        c = cost(genotype)
        trial.set_user_attr("key", genotype.key)
        trial.set_user_attr("genotype", genotype.to_dict())
        trial.set_user_attr("hyperparameters", values)
        for name, value in _cost_attrs(c).items():
            trial.set_user_attr(name, value)
        return genotype, values, c

    def _over_budget(self, trial: optuna.Trial, genotype: Genotype, c: Cost) -> bool:
        predicted = None
        if self.latency is not None:  # microseconds from the table: nothing is built
            predicted = self.latency.predict(genotype)
            trial.set_user_attr("latency_predicted_ms", predicted)
        values = constraints(c, self.cfg.budget, predicted)
        if self.cfg.budget.mode != "prune":  # "prune" is the baseline that hides why
            trial.set_user_attr(CONSTRAINTS_ATTR, [float(v) for v in values.values()])  # the sampler stores them
        return any(v > 0 for v in values.values())

    def _duplicate_of(self, trial: optuna.Trial, key: str, values: dict[str, Any]) -> optuna.trial.FrozenTrial | None:
        for other in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if (
                is_trained(other)
                and other.user_attrs.get("key") == key
                and other.user_attrs.get("hyperparameters") == values
            ):
                return other
        return None

    def _resume_state(self, trial: optuna.Trial, genotype: Genotype) -> tuple[TrainState | None, list[int]]:
        """The newest checkpoint among the trials this one retries (Optuna's retry history),
        if it holds the same genotype; and the numbers whose checkpoints this trial replaces."""
        frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
        history = list(frozen.system_attrs.get("retry_history", []))
        for number in reversed(history):
            path = trial_file(self.checkpoints_dir, number)
            if not path.is_file():
                continue
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved.get("key") != genotype.key:
                log.warning(
                    "%s holds genotype %s, not %s: trial %d starts afresh",
                    path,
                    saved.get("key"),
                    genotype.key,
                    trial.number,
                )
                break
            trial.set_user_attr("resumed_from", {"trial": number, "epoch": int(saved["state"]["epoch"])})
            return saved["state"], history
        return None, history

    def _run_config(
        self, trial: optuna.Trial, genotype: Genotype, own: Config, values: dict[str, Any], c: Cost
    ) -> dict[str, Any]:
        return {
            "trial": trial.number,
            "genotype": genotype.to_dict(),
            "genotype_key": genotype.key,
            # The settings this trial trains with; the searched keys' values and their sweeps.
            "train": asdict(own.train),
            "hyperparameters": values,
            "searched": {} if trial.user_attrs.get("warm_start") else {p.key: p.expression for p in self.params},
            "budget": asdict(self.cfg.budget),
            "data": asdict(own.data),
            "storage": self.storage,
            **{f"cost/{k}": v for k, v in _cost_attrs(c).items()},
        }

    # -- training --------------------------------------------------------------------------
    def _train(self, trial: optuna.Trial, genotype: Genotype, values: dict[str, Any], c: Cost, start: float) -> float:
        own = apply_values(self.cfg, values)  # this trial's own config
        trainer = self.trainer.configured(own.train, own.data)
        resume, retried = self._resume_state(trial, genotype)
        trial.set_user_attr("setup_seconds", time.perf_counter() - start)
        run = self.tracker.start(
            name=f"trial-{trial.number:04d}-{genotype.key}", config=self._run_config(trial, genotype, own, values, c)
        )
        t = _Training(
            trial, genotype, run, {**_cost_attrs(c), "genotype_key": genotype.key}, retried, epochs=own.train.epochs
        )
        try:
            if resume is not None:  # the epochs done before the kill: reported again, not retrained
                for done in resume["history"]:
                    self._on_epoch(t, EpochResult(**done))
            trained = train_network(
                genotype,
                trainer,
                seed=own.train.seed,
                on_epoch=lambda result: self._on_epoch(t, result),
                on_checkpoint=self._checkpointer(t),
                resume=resume,
            )
        except BaseException as err:
            self._stopped(t, err)
            raise
        if trained.fail_reason is not None:
            self._failed(t, trained.fail_reason)
            raise TrialFailed(trained.fail_reason)
        value = t.history[-1].val_accuracy
        if value > self._best_so_far(trial):
            state = {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}
            save_trial_file(
                self.weights_dir,
                trial.number,
                genotype,
                val_accuracy=value,
                state_dict=state,
                **model_card(self.trainer.data),
            )
        self._end(t, Status.COMPLETE)
        return value

    def _on_epoch(self, t: _Training, result: EpochResult) -> None:
        t.history.append(result)
        after = self.cfg.search.log_epochs_after
        if after is not None and time.perf_counter() - t.start >= after:  # long trials: a line per epoch
            log.info(
                "trial %d epoch %d/%d: loss %.4f, val %.4f, %.1f s",
                t.trial.number,
                result.epoch,
                t.epochs,
                result.train_loss,
                result.val_accuracy,
                result.seconds,
            )
        t.run.log(result.metrics(), step=result.epoch)
        t.trial.report(result.val_accuracy, result.epoch)
        if result.epoch < t.epochs and t.trial.should_prune():  # a fully trained network completes
            raise optuna.TrialPruned(f"pruned after epoch {result.epoch}")

    def _checkpointer(self, t: _Training) -> Callable[[TrainState], None]:
        """Saves the training state after an epoch once `search.checkpoint_seconds` have passed
        since the last save (0: every epoch; None: never)."""
        every = self.cfg.search.checkpoint_seconds
        last_saved = time.monotonic()

        def checkpoint(state: TrainState) -> None:
            nonlocal last_saved
            if every is not None and time.monotonic() - last_saved >= every:
                save_trial_file(self.checkpoints_dir, t.trial.number, t.genotype, state=state)
                last_saved = time.monotonic()
                t.saved_epoch, t.unsaved = int(state["epoch"]), None
            else:  # a SIGTERM or a storage outage mid-epoch saves this one (_save_unsaved)
                t.unsaved = self.trainer.snapshot(state)

        return checkpoint

    def _best_so_far(self, trial: optuna.Trial) -> float:
        trials = trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        return max((t.value for t in trials if is_trained(t) and t.number != trial.number), default=float("-inf"))  # type: ignore[type-var]

    # -- the end of a trained trial --------------------------------------------------------
    def _stopped(self, t: _Training, err: BaseException) -> None:
        """Record why training stopped on an exception, which the caller raises on: an
        interruption (no status: the trial is retried), the pruner, or a bug (failed)."""
        if isinstance(err, _INTERRUPTIONS):
            with interrupt.held():  # a second Ctrl-C waits for the checkpoint the retry resumes from
                if isinstance(err, (PoliteStop, SystemExit, StorageUnavailable)):  # SystemExit: submitit's requeue
                    self._save_unsaved(t)
                t.run.finish({**t.summary, "state": "interrupted"}, interrupted=True)
        elif isinstance(err, optuna.TrialPruned):
            self._end(t, Status.PRUNED)
        else:
            self._failed(t, f"{err.__class__.__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}")

    def _save_unsaved(self, t: _Training) -> None:
        """The state after the last finished epoch as the trial's checkpoint, where the
        checkpoint file holds an earlier one: the retry resumes from that epoch."""
        if t.unsaved is not None:
            save_trial_file(self.checkpoints_dir, t.trial.number, t.genotype, state=t.unsaved)
            t.saved_epoch, t.unsaved = int(t.unsaved["epoch"]), None
        log.warning(
            "trial %d stopped in epoch %d of %d: %s",
            t.trial.number,
            len(t.history) + 1,
            t.epochs,
            f"saved after epoch {t.saved_epoch}" if t.saved_epoch else "no epoch finished, nothing to save",
        )

    def _failed(self, t: _Training, reason: str) -> None:
        t.trial.set_user_attr("fail_reason", reason)
        t.summary["fail_reason"] = reason
        self._end(t, Status.FAILED)

    def _end(self, t: _Training, status: Status) -> None:
        """Status, timings and best accuracy on the trial and its W&B run; checkpoints dropped."""
        seconds = time.perf_counter() - t.start
        if self.latency_cache is not None and status in (Status.COMPLETE, Status.PRUNED):
            measured = self.latency_cache.measure(t.genotype, self.latency_setting)  # once per genotype
            t.trial.set_user_attr("latency_ms", measured)  # what the prediction promised
            t.summary.update(latency_ms=measured, latency_predicted_ms=t.trial.user_attrs.get("latency_predicted_ms"))
        t.trial.set_user_attr("status", status)
        t.trial.set_user_attr("train_seconds", seconds)
        t.trial.set_user_attr("epochs", len(t.history))
        skipped = sum(r.skipped_images for r in t.history)
        if skipped:  # undecodable files in a folder data set: counted, never fatal
            t.trial.set_user_attr("skipped_images", skipped)
            t.summary["skipped_images"] = skipped
            log.warning("trial %d: %d image(s) could not be decoded and were skipped", t.trial.number, skipped)
        if t.history:
            best = max(r.val_accuracy for r in t.history)
            t.trial.set_user_attr("best_val_accuracy", best)
            t.summary.update({"final_val_accuracy": t.history[-1].val_accuracy, "best_val_accuracy": best})
        t.run.finish(
            {**t.summary, "state": str(status), "train_seconds": seconds, "epochs": len(t.history)},
            failed=status == Status.FAILED,
        )
        for number in (*t.retried, t.trial.number):
            trial_file(self.checkpoints_dir, number).unlink(missing_ok=True)
