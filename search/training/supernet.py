"""Training a supernet and scoring a genotype with its weights.

Training (`fit_supernet`) follows the sandwich rule with in-place distillation (US-Nets, ICCV
2019; BigNAS, ECCV 2020): every step runs the largest subnet on the labels, then the smallest
and `n` random subnets, each on the largest one's soft predictions (or on the labels, with
distillation off), and takes one SGD step on the summed gradients. The largest network bounds
what every other one can learn and the smallest is the one most starved of updates, so
training both each step lifts the whole range; the teacher's soft targets are what lets the
small subnets match a stand-alone network trained on its own. The state after each epoch
(weights, optimiser, data order, the subnet draws' random stream) goes to `on_checkpoint`, and
`resume` continues from such a state as if never stopped: a kill costs the epoch in flight.

Scoring: inherited batch-norm statistics belong to whatever mix of subnets the supernet last
ran, so a score without recalibration is noise (Once-for-All recomputes them over 2,000
training images in 10 batches). `recalibrate` recomputes them exactly: running statistics
reset, then averaged with equal weight over a fixed set of training batches (momentum None: a
cumulative average), on the stand-alone subnet, so the shared supernet is never changed by
scoring.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from search.data.splits import Splits, minibatch
from search.training import interrupt
from search.training.trainer import Trainer, TrainingDiverged, TrainState
from space.genotype import Genotype
from space.supernet import Supernet

__all__ = [
    "SandwichDraws",
    "Scorer",
    "SupernetEpoch",
    "calibration_batches",
    "fit_supernet",
    "recalibrate",
    "score",
]


class SandwichDraws(Protocol):
    """Where each step's subnets come from (search.budget.supernet.Sandwich): the largest
    first, then the smallest and `n` random ones; seeded, with a state a checkpoint keeps."""

    def step(self, n: int) -> list[Genotype]: ...

    def state(self) -> Any: ...

    def restore(self, state: Any) -> None: ...


@dataclass(frozen=True)
class SupernetEpoch:
    epoch: int  # 1-based
    loss: float  # the largest subnet's cross-entropy on the labels, mean over the epoch
    distill_loss: float  # the other subnets' mean loss (KL to the largest, or cross-entropy)
    probes: dict[str, float]  # validation accuracy of each probe subnet, after recalibration
    lr: float
    seconds: float

    def metrics(self) -> dict[str, float]:
        return {
            "epoch": self.epoch,
            "train/loss": self.loss,
            "train/subnet_loss": self.distill_loss,
            "lr": self.lr,
            "epoch_seconds": self.seconds,
            **{f"val/accuracy/{name}": value for name, value in self.probes.items()},
        }


def calibration_batches(
    data: Splits, *, batches: int, batch_size: int, seed: int = 0, trainer: Trainer | None = None
) -> list[torch.Tensor]:
    """`batches` batches of training images, the same for every genotype scored (a seeded draw
    without replacement), so that scores differ by network only; on `trainer`'s device."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data.train), generator=generator)[: batches * batch_size]
    found = [minibatch(data, "train", order[i : i + batch_size])[0] for i in range(0, len(order), batch_size)]
    if trainer is None:
        return found
    fmt = torch.channels_last if trainer.channels_last else torch.contiguous_format
    return [x.to(trainer.device, memory_format=fmt) for x in found]


@torch.no_grad()
def recalibrate(model: nn.Module, batches: list[torch.Tensor]) -> None:
    """Batch-norm running statistics recomputed from `batches`: each layer's mean and (unbiased)
    variance averaged over the batches with equal weight. Other layers are left as they are."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    model.eval()
    for m in norms:
        m.train()  # batch statistics, accumulated into the running ones; dropout stays off
    for x in batches:
        model(x)
    for m, (momentum, training) in zip(norms, saved):
        m.momentum = momentum
        m.train(training)
    model.eval()


@torch.no_grad()
def score(
    supernet: Supernet, genotype: Genotype, trainer: Trainer, batches: list[torch.Tensor], *, limit: int | None = None
) -> float:
    """Validation accuracy of `genotype` with the supernet's weights (on the first `limit`
    validation images; None: all), after its batch-norm statistics are recalibrated over
    `batches`."""
    net = trainer.prepare(supernet.subnet(genotype))
    recalibrate(net, batches)
    return trainer.evaluate(net, "val", limit=limit)


@dataclass(frozen=True)
class Scorer:
    """Scores genotypes through one trained supernet, always over the same calibration batches
    and validation images, so that two scores differ by network only."""

    supernet: Supernet  # in eval mode, on the trainer's device; never changed by a score
    trainer: Trainer
    calibration: list[torch.Tensor]
    key: str  # the supernet's (results/supernets/<key>/)
    limit: int | None = None  # validation images (None: all)

    def refusal(self, genotype: Genotype) -> str | None:
        """Why the supernet cannot hold `genotype` (a latency budget may project a draw outside
        its range of budgets), or None."""
        try:
            self.supernet.space.check(genotype)
        except ValueError as err:
            return f"outside supernet {self.key}: {err}"
        return None

    def __call__(self, genotype: Genotype) -> float:
        return score(self.supernet, genotype, self.trainer, self.calibration, limit=self.limit)


def _sandwich_step(
    supernet: Supernet,
    optimizer: torch.optim.Optimizer,
    trainer: Trainer,
    batch: tuple[torch.Tensor, torch.Tensor],
    subnets: list[Genotype],
    distill: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step over the sandwich's gradients; the largest subnet's loss and the others' mean."""
    x, y = batch
    optimizer.zero_grad(set_to_none=True)
    teacher: torch.Tensor | None = None
    largest = others = torch.zeros((), device=x.device)
    for i, g in enumerate(subnets):
        with trainer.autocast():
            logits = supernet(x, g).float()
        if i == 0 or not distill:
            loss = F.cross_entropy(logits, y)
        else:
            loss = F.kl_div(F.log_softmax(logits, dim=1), teacher, reduction="batchmean")
        if i == 0:
            teacher, largest = F.softmax(logits.detach(), dim=1), loss.detach()
        else:
            others = others + loss.detach() / (len(subnets) - 1)
        loss.backward()
    optimizer.step()
    return largest, others


def _state(
    supernet: Supernet,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    draws: SandwichDraws,
    history: list[SupernetEpoch],
) -> TrainState:
    return {
        "epoch": len(history),
        "supernet": supernet.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "draws": draws.state(),
        "torch_rng": torch.get_rng_state(),
        "history": [asdict(h) for h in history],
    }


def _momentum_follows(optimizer: torch.optim.Optimizer) -> Callable[[torch.Tensor, int, torch.Tensor], None]:
    """Reorders a weight's momentum as channel sorting reorders the weight."""

    def moved(t: torch.Tensor, dim: int, order: torch.Tensor) -> None:
        buffer = optimizer.state.get(t, {}).get("momentum_buffer")  # type: ignore[call-overload]
        if buffer is not None:
            buffer.copy_(buffer.index_select(dim, order))

    return moved


def fit_supernet(
    supernet: Supernet,
    trainer: Trainer,
    draws: SandwichDraws,
    *,
    random_subnets: int,
    distill: bool,
    sort_channels: bool = False,
    probes: dict[str, Genotype],
    calibration: list[torch.Tensor],
    probe_images: int | None = None,
    on_epoch: Callable[[SupernetEpoch], None] | None = None,
    on_checkpoint: Callable[[TrainState], None] | None = None,
    resume: TrainState | None = None,
) -> list[SupernetEpoch]:
    """Train `supernet` (already on `trainer`'s device) for `trainer.cfg.epochs` epochs with
    `trainer.cfg`'s optimiser and schedule; after each epoch, sort its channels by importance
    (`sort_channels`), score every probe subnet, hand the state to `on_checkpoint`, then the
    epoch to `on_epoch`. Returns the history."""
    optimizer = trainer.optimizer(supernet)
    generator = torch.Generator().manual_seed(trainer.cfg.seed)
    history: list[SupernetEpoch] = []
    if resume is not None:
        supernet.load_state_dict(resume["supernet"])
        optimizer.load_state_dict(resume["optimizer"])
        generator.set_state(resume["generator"])
        draws.restore(resume["draws"])
        torch.set_rng_state(resume["torch_rng"])
        history = [SupernetEpoch(**h) for h in resume["history"]]
    with interrupt.deferred():  # a SIGTERM or Ctrl-C stops it between two steps
        for epoch in range(len(history), trainer.cfg.epochs):
            start, lr = time.perf_counter(), trainer.learning_rate(epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            supernet.train()
            sums, steps = torch.zeros(2, device=trainer.device), 0
            for batch in trainer.train_batches(generator):
                interrupt.check()
                if len(batch[1]) < 2:  # batch norm needs two samples
                    continue
                subnets = draws.step(random_subnets)
                sums += torch.stack(_sandwich_step(supernet, optimizer, trainer, batch, subnets, distill))
                steps += 1
            loss, others = (float(v) / max(steps, 1) for v in sums)  # the one host sync of the epoch
            if not math.isfinite(loss) or not math.isfinite(others):
                raise TrainingDiverged(f"the supernet's loss became {loss} in epoch {epoch + 1}")
            if sort_channels:  # Once-for-All's channel sorting, after every epoch (space.supernet)
                supernet.sort_channels(_momentum_follows(optimizer))
            accuracy = {n: score(supernet, g, trainer, calibration, limit=probe_images) for n, g in probes.items()}
            history.append(SupernetEpoch(epoch + 1, loss, others, accuracy, lr, time.perf_counter() - start))
            if on_checkpoint is not None:
                on_checkpoint(_state(supernet, optimizer, generator, draws, history))
            if on_epoch is not None:
                on_epoch(history[-1])
    return history
