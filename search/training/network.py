"""One function trains one network, for every command: a search trial, an ablation or comparison
run, a benchmark's retraining. Each caller brings its own trainer (its recipe and data) and
callbacks (a trial's report and prune, checkpoints, W&B); what the training gave comes back as a
`Trained`, with the reason when it failed as a network can (a diverged loss, memory).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from search.config.schema import DataConfig, TrainConfig, training_identity
from search.training.trainer import EpochResult, Trainer, TrainingDiverged, TrainState
from space.genotype import Genotype
from space.model import build_model

__all__ = ["Trained", "failure_reason", "run_key", "train_network"]


@dataclass
class Trained:
    """What training one network gave: its epochs, the model as evaluated (the Polyak average
    where that is on), the seconds it took, and why it stopped early (None: it trained to the end)."""

    history: list[EpochResult]
    model: nn.Module | None
    seconds: float
    fail_reason: str | None = None

    @property
    def val_accuracy(self) -> float | None:
        return self.history[-1].val_accuracy if self.history and self.fail_reason is None else None


def failure_reason(err: BaseException) -> str | None:
    """The stored reason for errors that end one network's training, or None for errors that are
    bugs (and must stop the command)."""
    if isinstance(err, torch.OutOfMemoryError):
        return "CUDA out of memory"
    if isinstance(err, TrainingDiverged):
        return str(err)
    text = str(err)
    if isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text):
        return "out of memory: " + text.splitlines()[0][:200]
    return None


def train_network(
    genotype: Genotype,
    trainer: Trainer,
    *,
    seed: int,
    on_epoch: Callable[[EpochResult], None] | None = None,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    resume: TrainState | None = None,
) -> Trained:
    """Build `genotype` from `seed` and train it with `trainer`. `on_epoch` may raise to stop (a
    pruned trial): anything but a network's own failure propagates."""
    torch.manual_seed(seed)
    model = build_model(genotype)
    start = time.perf_counter()
    try:
        history, evaluated = trainer.fit(
            model, aux_weight=genotype.aux.weight, on_epoch=on_epoch, on_checkpoint=on_checkpoint, resume=resume
        )
    except Exception as err:
        reason = failure_reason(err)
        if reason is None:
            raise
        if isinstance(err, torch.OutOfMemoryError) and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return Trained(history=[], model=None, seconds=time.perf_counter() - start, fail_reason=reason)
    return Trained(history=history, model=evaluated, seconds=time.perf_counter() - start)


def run_key(genotype: Genotype, train: TrainConfig, data: DataConfig, seed: int, **identity: Any) -> str:
    """12 hex digits naming one training run: the genotype, the training config minus how it
    executes, the data config, the seed, and whatever else the caller trains by (a benchmark
    arm's searched values). A stored run with this key is never trained again."""
    parts = {
        "genotype": genotype.key,
        "train": training_identity(train),
        "data": dataclasses.asdict(data),
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(parts | identity, sort_keys=True).encode()).hexdigest()[:12]
