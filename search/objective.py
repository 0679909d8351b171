"""One trial: sample -> budget -> build -> train -> report/prune -> log.

Nothing is built before the analytic cost says the network fits the budget, so no second of
compute goes to an over-budget network. Every trial stores its genotype, cost and status as user
attributes, so reports and resumed runs read everything from the study's storage.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
import torch

from search.budget import constraints, project
from search.config import Config
from search.config import ranges_from_config
from search.sample import Hyperparameters, TrialDraw, sample_trial
from search.tracking import Tracker, TrialRun
from search.credentials import mask_credentials
from search.workers import worker_id
from search.train import EpochResult, Trainer, TrainingDiverged, TrainState
from space.accounting import Cost, cost
from space.genotype import Genotype
from space.model import build_model

__all__ = ["CATCH", "Objective", "Status", "TrialFailed", "checkpoint_path", "weights_path"]

log = logging.getLogger(__name__)

class TrialFailed(Exception):
    """A trial outcome, not a bug: the loss diverged or memory ran out. The trial fails with the
    reason stored and the study goes on; any other exception stops the study."""


CATCH: tuple[type[Exception], ...] = (TrialFailed,)


def _failure_reason(err: BaseException) -> str | None:
    """The stored reason for errors that end one trial, or None for errors that are bugs."""
    if isinstance(err, torch.OutOfMemoryError):
        return "CUDA out of memory"
    if isinstance(err, TrainingDiverged):
        return str(err)
    text = str(err)
    if isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text):
        return "out of memory: " + text.splitlines()[0][:200]
    return None


class Status:
    """Our finer view of a trial, stored as the user attribute "status"."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"
    INFEASIBLE = "infeasible"
    DUPLICATE = "duplicate"


def _cost_attrs(c: Cost) -> dict[str, int]:
    return {"macs": c.macs, "params": c.params, "train_macs": c.train_macs, "train_params": c.train_params}


class Objective:
    """Callable for `study.optimize`; returns the final validation accuracy (Polyak average)."""

    def __init__(
        self, *, cfg: Config, base: Genotype, trainer: Trainer, tracker: Tracker, study_dir: Path, storage: str = ""
    ) -> None:
        self.cfg = cfg
        self.base = base
        self.ranges = ranges_from_config(cfg.space)
        self.trainer = trainer
        self.tracker = tracker
        self.weights_dir = study_dir / "weights"
        self.checkpoints_dir = study_dir / "checkpoints"
        self.storage = mask_credentials(storage)

    # -- stages of a trial -----------------------------------------------------------------
    def _sample(self, trial: optuna.Trial) -> tuple[Genotype, Hyperparameters, Cost]:
        genotype, hp = sample_trial(
            TrialDraw(trial), ranges=self.ranges, base=self.base, space=self.cfg.space, train=self.cfg.train
        )
        if self.cfg.budget.mode == "project":
            projected = project(genotype, self.cfg.budget, divisor=self.ranges.width_step)
            if projected is not None:
                genotype, multiplier = projected
                trial.set_user_attr("width_multiplier", multiplier)
        c = cost(genotype)
        trial.set_user_attr("key", genotype.key)
        trial.set_user_attr("genotype", genotype.to_dict())
        trial.set_user_attr("hyperparameters", asdict(hp))
        for name, value in _cost_attrs(c).items():
            trial.set_user_attr(name, value)
        return genotype, hp, c

    def _over_budget(self, trial: optuna.Trial, c: Cost) -> bool:
        values = constraints(c, self.cfg.budget)
        if self.cfg.budget.mode != "prune":  # "prune" is the baseline that hides why
            for name, value in values.items():
                trial.set_constraint(name, value)
        return any(v > 0 for v in values.values())

    def _duplicate_of(self, trial: optuna.Trial, key: str, hp: Hyperparameters) -> optuna.trial.FrozenTrial | None:
        wanted = asdict(hp)
        for other in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            attrs = other.user_attrs
            if attrs.get("status") == Status.COMPLETE and attrs.get("key") == key and attrs.get("hyperparameters") == wanted:
                return other
        return None

    def _best_so_far(self, trial: optuna.Trial) -> float:
        values = [
            t.value
            for t in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.user_attrs.get("status") == Status.COMPLETE and t.value is not None and t.number != trial.number
        ]
        return max(values, default=float("-inf"))

    def _run_config(self, trial: optuna.Trial, genotype: Genotype, hp: Hyperparameters, c: Cost) -> dict[str, Any]:
        return {
            "trial": trial.number,
            "genotype": genotype.to_dict(),
            "genotype_key": genotype.key,
            **asdict(hp),
            "train": asdict(self.cfg.train),
            "budget": asdict(self.cfg.budget),
            "data": asdict(self.cfg.data),
            "storage": self.storage,
            **{f"cost/{k}": v for k, v in _cost_attrs(c).items()},
        }

    # -- checkpoints: a retried trial resumes where its killed predecessor stopped ---------
    def _resume_state(self, trial: optuna.Trial, genotype: Genotype) -> tuple[TrainState | None, list[int]]:
        """The newest checkpoint among the trials this one retries (Optuna's retry history),
        if it holds the same genotype; and the numbers whose checkpoints this trial replaces."""
        frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
        history = list(frozen.system_attrs.get("retry_history", []))
        for number in reversed(history):
            path = checkpoint_path(self.checkpoints_dir, number)
            if not path.is_file():
                continue
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if saved.get("key") != genotype.key:
                log.warning("%s holds genotype %s, not %s: trial %d starts afresh", path, saved.get("key"), genotype.key, trial.number)
                break
            trial.set_user_attr("resumed_from", {"trial": number, "epoch": int(saved["state"]["epoch"])})
            return saved["state"], history
        return None, history

    def _save_checkpoint(self, trial: optuna.Trial, genotype: Genotype, state: TrainState) -> None:
        path = checkpoint_path(self.checkpoints_dir, trial.number)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"trial": trial.number, "key": genotype.key, "genotype": genotype.to_dict(), "state": state}, tmp)
        tmp.replace(path)

    def _drop_checkpoints(self, numbers: list[int]) -> None:
        for number in numbers:
            checkpoint_path(self.checkpoints_dir, number).unlink(missing_ok=True)

    # -- the trial -------------------------------------------------------------------------
    def __call__(self, trial: optuna.Trial) -> float:
        start = time.perf_counter()
        trial.set_user_attr("worker", worker_id())
        genotype, hp, c = self._sample(trial)
        if self._over_budget(trial, c):
            trial.set_user_attr("status", Status.INFEASIBLE)
            if self.cfg.budget.mode == "prune":
                raise optuna.TrialPruned("over budget")
            return 0.0  # never trained; the constraint marks it infeasible for samplers and best_trial
        duplicate = self._duplicate_of(trial, genotype.key, hp)
        if duplicate is not None:
            trial.set_user_attr("status", Status.DUPLICATE)
            trial.set_user_attr("duplicate_of", duplicate.number)
            return float(duplicate.value)  # type: ignore[arg-type]

        torch.manual_seed(self.cfg.train.seed)
        model = build_model(genotype)
        resume, retried = self._resume_state(trial, genotype)
        trial.set_user_attr("setup_seconds", time.perf_counter() - start)
        run = self.tracker.start(name=f"trial-{trial.number:04d}-{genotype.key}", config=self._run_config(trial, genotype, hp, c))
        summary: dict[str, Any] = {**_cost_attrs(c), "genotype_key": genotype.key}
        history: list[EpochResult] = []

        def on_epoch(result: EpochResult) -> None:
            history.append(result)
            metrics = {
                "epoch": result.epoch,
                "train/loss": result.train_loss,
                "val/accuracy": result.val_accuracy,
                "lr": result.lr,
                "epoch_seconds": result.seconds,
                **{f"train/aux_loss/{name}": value for name, value in result.aux_losses.items()},
            }
            run.log(metrics, step=result.epoch)
            trial.report(result.val_accuracy, result.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {result.epoch}")

        every = self.cfg.search.checkpoint_seconds
        last_saved = [time.monotonic()]

        def checkpoint(state: TrainState) -> None:
            if every is not None and time.monotonic() - last_saved[0] >= every:
                self._save_checkpoint(trial, genotype, state)
                last_saved[0] = time.monotonic()

        train_start = time.perf_counter()
        try:
            if resume is not None:  # the epochs done before the kill: reported again, not retrained
                for done in resume["history"]:
                    on_epoch(EpochResult(**done))
            _, evaluated = self.trainer.fit(
                model,
                lr=hp.lr,
                weight_decay=hp.weight_decay,
                aux_weight=genotype.aux.weight,
                on_epoch=on_epoch,
                on_checkpoint=checkpoint,
                resume=resume,
            )
        except optuna.TrialPruned:
            self._finish(trial, run, summary, history, Status.PRUNED, train_start)
            self._drop_checkpoints([*retried, trial.number])
            raise
        except (KeyboardInterrupt, SystemExit, optuna.exceptions.UpdateFinishedTrialError):
            # Interrupted (Ctrl-C; SLURM preemption exits through SystemExit) or already failed
            # as stale by another worker: not the network's fault. No status, so the trial does
            # not count; its checkpoint stays for the retry that heartbeats or a restart queue.
            run.finish({**summary, "state": "interrupted"}, failed=True)
            raise
        except BaseException as err:  # the trial and its W&B run end as failed, whatever the cause
            reason = _failure_reason(err)
            stored = reason or f"{err.__class__.__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            trial.set_user_attr("fail_reason", stored)
            if isinstance(err, torch.OutOfMemoryError) and torch.cuda.is_available():
                torch.cuda.empty_cache()
            self._finish(trial, run, {**summary, "fail_reason": stored}, history, Status.FAILED, train_start)
            self._drop_checkpoints([*retried, trial.number])
            if reason is not None:
                raise TrialFailed(reason) from err
            raise
        value = history[-1].val_accuracy
        if value > self._best_so_far(trial):
            self._save_weights(trial, genotype, evaluated, value)
        self._finish(trial, run, summary, history, Status.COMPLETE, train_start)
        self._drop_checkpoints([*retried, trial.number])
        return value

    def _finish(
        self,
        trial: optuna.Trial,
        run: TrialRun,
        summary: dict[str, Any],
        history: list[EpochResult],
        status: str,
        train_start: float,
    ) -> None:
        seconds = time.perf_counter() - train_start
        trial.set_user_attr("status", status)
        trial.set_user_attr("train_seconds", seconds)
        trial.set_user_attr("epochs", len(history))
        if history:
            best = max(r.val_accuracy for r in history)
            trial.set_user_attr("best_val_accuracy", best)
            summary.update({"final_val_accuracy": history[-1].val_accuracy, "best_val_accuracy": best})
        run.finish({**summary, "state": status, "train_seconds": seconds, "epochs": len(history)}, failed=status == Status.FAILED)

    def _save_weights(self, trial: optuna.Trial, genotype: Genotype, model: torch.nn.Module, value: float) -> None:
        """Keep the weights of a trial that beats the best so far, nanoGPT-style: the genotype
        travels with them, so the network can always be rebuilt. One file per trial, so a kill
        before the trial is COMPLETE never costs the previous best's weights; the study keeps
        only the best trial's file once trials finish (`search.study.keep_best_weights`)."""
        path = weights_path(self.weights_dir, trial.number)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        tmp = path.with_suffix(".tmp")
        torch.save({"trial": trial.number, "val_accuracy": value, "genotype": genotype.to_dict(), "state_dict": state}, tmp)
        tmp.replace(path)


def weights_path(directory: Path, number: int) -> Path:
    return directory / f"trial-{number:04d}.pt"


def checkpoint_path(directory: Path, number: int) -> Path:
    return directory / f"trial-{number:04d}.pt"
