"""Train and evaluate one network: SGD with momentum, the paper's or a cosine schedule, aux losses.

Speed comes from keeping the whole data set as one tensor on the device and slicing batches
from it (no DataLoader, no per-sample collation), channels_last memory format, AMP on CUDA, and
a single host sync per epoch (the loss is accumulated on the device and checked for NaN/inf at
the end of each epoch). `bench/train.py` measures the ratio against a plain PyTorch loop.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel

from search.config.schema import EXECUTION_FIELDS, DataConfig, TrainConfig
from search.data.folder import FolderSplit, KeyedSampler, normalised
from search.data.folder import loader as folder_loader
from search.data.sources.folder import FolderData, train_transform
from search.data.splits import Split, Splits
from search.training import interrupt

__all__ = ["EpochResult", "Trainer", "TrainingDiverged", "TrainState", "resolve_device", "uses_channels_last"]

# Everything needed to continue a fit after its last finished epoch (see `Trainer.fit`): plain
# tensors, numbers and lists, so `torch.load(weights_only=True)` reads it back.
TrainState = dict[str, Any]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the trial fails with this reason, the study goes on."""


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    train_loss: float  # main head's cross-entropy, mean over the epoch
    aux_losses: dict[str, float] = field(default_factory=dict)  # per aux head, unweighted
    val_accuracy: float = 0.0
    lr: float = 0.0
    seconds: float = 0.0
    skipped_images: int = 0  # undecodable images dropped this epoch (folder data)

    def metrics(self) -> dict[str, float]:
        """The epoch's metrics as every tracked run logs them (searches and ablations alike)."""
        return {
            "epoch": self.epoch,
            "train/loss": self.train_loss,
            "val/accuracy": self.val_accuracy,
            "lr": self.lr,
            "epoch_seconds": self.seconds,
            **({"data/skipped_images": self.skipped_images} if self.skipped_images else {}),
            **{f"train/aux_loss/{name}": value for name, value in self.aux_losses.items()},
        }


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def thread_share(train: TrainConfig, processes: int, device: str | None = None) -> int | None:
    """CPU threads for one of `processes` training processes on this machine: `train.threads`
    when set, else an equal share of the cores. None (torch's default) for one process or off
    the CPU: OpenMP pools that together ask for more threads than there are cores spin against
    each other."""
    if train.threads is not None or processes < 2 or resolve_device(device or train.device).type != "cpu":
        return train.threads
    return max(1, (os.cpu_count() or 1) // processes)


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips per image and one random shift of up to 1/8 of the side per batch
    (reflect-padded crop): cheap tensor ops that stay on the device."""
    flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = max(1, x.shape[-1] // 8)
    dy, dx = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=generator))
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    return padded[..., dy : dy + x.shape[-2], dx : dx + x.shape[-1]]


def _sgd(model: nn.Module, device: torch.device, **kwargs: float) -> torch.optim.SGD:
    """Multi-tensor SGD on CUDA; on CPU the per-tensor loop, which measured faster than both the
    foreach and the fused kernels on channels_last weights here (bench/train.py)."""
    return torch.optim.SGD(model.parameters(), foreach=device.type == "cuda", **kwargs)


class _WarmupEMA:
    """Polyak (exponential moving) averaging whose decay ramps up as min(decay, (1+n)/(10+n)) over
    the n-th update, so short runs are not dominated by the initial weights. The trainer counts
    `steps` (AveragedModel calls this once per device/dtype group with fresh tensor objects, so
    the function cannot tell steps apart itself); it is part of a checkpoint."""

    def __init__(self, decay: float, steps: int = 0) -> None:
        self.decay = decay
        self.steps = steps

    @torch.no_grad()
    def __call__(self, averaged: list[torch.Tensor], current: list[torch.Tensor], _n: torch.Tensor) -> None:
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for a, c in zip(averaged, current):
            if a.is_floating_point():
                a.lerp_(c, 1 - d)
            else:
                a.copy_(c)


def uses_channels_last(setting: str) -> bool:
    # On CPU channels_last trained an Inception proxy 1.6x faster (bench/train.py); on CUDA the
    # tensor cores want it. "auto" therefore means on, on every device, unless turned off.
    return str(setting).lower() != "false"


@dataclass
class _Fit:
    """Everything one fit updates, all of which a checkpoint saves."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    generator: torch.Generator  # data order and augmentation
    averaged: AveragedModel | None
    ema: _WarmupEMA | None
    history: list[EpochResult] = field(default_factory=list)

    @property
    def evaluated(self) -> nn.Module:
        """The network that is evaluated: the Polyak average where there is one."""
        return self.averaged if self.averaged is not None else self.model


class _InMemory:
    """A split held as one tensor on the device: the fast path of small data sets (no loader,
    no host-device copies; augmentation is cheap tensor ops there)."""

    def __init__(self, split: Split, device: torch.device, channels_last: bool) -> None:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.images = split.images.to(device, memory_format=fmt)
        self.labels = split.labels.to(device)
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.labels)

    def train_batches(
        self, generator: torch.Generator, batch_size: int, augment: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self), generator=generator).to(self.labels.device)
        for i in range(0, len(order), batch_size):
            index = order[i : i + batch_size]
            x = self.images[index]
            yield (_augment(x, generator) if augment else x), self.labels[index]

    def eval_batches(self, limit: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        end = len(self) if limit is None else min(limit, len(self))
        for i in range(0, end, 512):
            yield self.images[i : min(i + 512, end)], self.labels[i : min(i + 512, end)]


class _Streamed:
    """A class-per-folder split read by DataLoader worker processes (persistent, prefetching,
    pinned memory on CUDA), normalised on the device. Each pass hands the loader (index, seed)
    keys drawn from the fit's generator, so augmentation is seeded and resumable; images that
    could not be decoded arrive with label -1 and are dropped and counted (`skipped`)."""

    def __init__(
        self, split: FolderSplit, data: Splits, device: torch.device, channels_last: bool, batch_size: int
    ) -> None:
        self.split = split
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.sampler = KeyedSampler()
        self.loader = folder_loader(
            split, self.sampler, batch_size=batch_size, workers=data.workers, pin_memory=device.type == "cuda"
        )
        self.mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.split)

    def _batches(self, keys: list[tuple[int, int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.sampler.keys = keys
        for x, y in self.loader:
            keep = y >= 0
            if not bool(keep.all()):
                self.skipped += int((~keep).sum())
                x, y = x[keep], y[keep]
            x = normalised(x.to(self.device, non_blocking=True), self.mean, self.std)
            yield x.contiguous(memory_format=self.memory_format), y.to(self.device, non_blocking=True)

    def train_batches(
        self, generator: torch.Generator, batch_size: int, augment: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self), generator=generator)
        seeds = torch.randint(0, 2**31 - 1, (len(self),), generator=generator)
        yield from self._batches(list(zip(order.tolist(), seeds.tolist())))

    def eval_batches(self, limit: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        yield from self._batches([(i, 0) for i in range(len(self) if limit is None else min(limit, len(self)))])


class Trainer:
    """Trains networks on one `Splits`: in-memory splits moved once to the device, folder splits
    streamed through loaders that live as long as the trainer. One training loop for both."""

    def __init__(
        self, cfg: TrainConfig, data: Splits, *, augment: bool = False, val_epoch_size: int | None = None
    ) -> None:
        self.cfg = cfg
        self.augment = augment
        # Validation images evaluated after each epoch but the last (the pruner's decisions); the
        # last epoch, whose value is the trial's, evaluates the whole split. None: all, every epoch.
        self.val_epoch_size = val_epoch_size
        self.device = resolve_device(cfg.device)
        self.channels_last = uses_channels_last(cfg.channels_last)
        self.amp_dtype: torch.dtype | None = None
        if cfg.amp and self.device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.data = data
        self._splits = {
            name: self._source(getattr(data, name), batch_size=cfg.batch_size if name == "train" else 256)
            for name in ("train", "val", "test")
        }

    def configured(self, cfg: TrainConfig, data: DataConfig) -> Trainer:
        """This trainer with one trial's settings (search.params): in-memory splits stay where
        they are on the device, and a streamed training split gets a new loader only when its
        batch size or augmentation differ. Execution settings (device, AMP, ...) never differ."""
        assert all(getattr(cfg, k) == getattr(self.cfg, k) for k in EXECUTION_FIELDS), (
            "execution settings are the study's"
        )
        trainer = copy.copy(self)
        trainer.cfg, trainer.augment, trainer._splits = cfg, data.augment, dict(self._splits)
        trainer.val_epoch_size = data.val_epoch_size
        current = self._splits["train"]
        if isinstance(current, _Streamed) and isinstance(data, FolderData):
            split = current.split.with_transform(train_transform(data))
            if split.transform != current.split.transform or cfg.batch_size != self.cfg.batch_size:
                trainer._splits["train"] = _Streamed(split, self.data, self.device, self.channels_last, cfg.batch_size)
        return trainer

    def _source(self, split: Split | FolderSplit, batch_size: int) -> _InMemory | _Streamed:
        if isinstance(split, FolderSplit):
            return _Streamed(split, self.data, self.device, self.channels_last, batch_size)
        return _InMemory(split, self.device, self.channels_last)

    @property
    def skipped_images(self) -> int:
        """Images that could not be decoded, over every pass so far (streamed splits only)."""
        return sum(source.skipped for source in self._splits.values())

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision where `amp` is on and the device is CUDA; a no-op otherwise."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _lr_factor(self, epoch: int) -> float:
        """Learning-rate multiplier for the 0-based epoch."""
        cfg = self.cfg
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs))
        return cfg.lr_decay ** (epoch // cfg.decay_every)

    def learning_rate(self, epoch: int) -> float:
        """The learning rate of the 0-based `epoch` under `cfg`'s schedule."""
        return self.cfg.lr * self._lr_factor(epoch)

    def optimizer(self, model: nn.Module) -> torch.optim.SGD:
        """SGD with `cfg`'s momentum and weight decay over `model`'s parameters."""
        return _sgd(model, self.device, lr=self.cfg.lr, momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay)

    def train_batches(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of training batches in `generator`'s order (augmented where set), on the device."""
        return self._splits["train"].train_batches(generator, self.cfg.batch_size, self.augment)

    def prepare(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def fit(
        self,
        model: nn.Module,
        *,
        aux_weight: float,
        on_epoch: Callable[[EpochResult], None] | None = None,
        on_checkpoint: Callable[[TrainState], None] | None = None,
        resume: TrainState | None = None,
    ) -> tuple[list[EpochResult], nn.Module]:
        """Train for `cfg.epochs` epochs with `cfg`'s optimiser settings, calling `on_checkpoint`
        with the state after each epoch (but the last), then `on_epoch` (it may raise to stop:
        pruning). The state comes first so that an epoch a caller has reported is always one it
        can resume from, even when a stop (submitit's requeue) lands between the two calls.
        `resume` (such a state)
        continues from its epoch with the same weights, optimiser, Polyak average and random
        stream, so a resumed fit ends where an uninterrupted one would. Returns the history and
        the network that was evaluated: the Polyak average when `cfg.polyak` is set, else the
        trained network. Seeded: two fits of the same network and config are identical on CPU."""
        run = self._start(model)
        if resume is not None:
            self._restore(run, resume)
        with interrupt.deferred():  # a SIGTERM stops it between two batches (interrupt.PoliteStop)
            for epoch in range(len(run.history), self.cfg.epochs):
                result = self._epoch(run, epoch, aux_weight=aux_weight)
                run.history.append(result)
                if on_checkpoint is not None and epoch + 1 < self.cfg.epochs:
                    on_checkpoint(self._state(run, epoch + 1))
                if on_epoch is not None:
                    on_epoch(result)
        return run.history, run.averaged.module if run.averaged is not None else run.model

    def _start(self, model: nn.Module) -> _Fit:
        cfg = self.cfg
        model = self.prepare(model)
        ema = _WarmupEMA(cfg.polyak) if cfg.polyak else None
        return _Fit(
            model=model,
            optimizer=self.optimizer(model),
            scaler=torch.amp.GradScaler(enabled=self.amp_dtype == torch.float16),
            generator=torch.Generator().manual_seed(cfg.seed),
            averaged=AveragedModel(model, multi_avg_fn=ema, use_buffers=True) if ema else None,
            ema=ema,
        )

    def _restore(self, run: _Fit, state: TrainState) -> None:
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scaler.load_state_dict(state["scaler"])
        run.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])  # dropout draws from the global stream
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        if run.averaged is not None and run.ema is not None:
            run.averaged.load_state_dict(state["averaged"])
            run.ema.steps = int(state["ema_steps"])
        run.history = [EpochResult(**r) for r in state["history"]]

    def _state(self, run: _Fit, epoch: int) -> TrainState:
        """What `_restore` needs to continue after `epoch` (1-based) as if never stopped."""
        return {
            "epoch": epoch,
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict(),
            "generator": run.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "averaged": run.averaged.state_dict() if run.averaged is not None else None,
            "ema_steps": run.ema.steps if run.ema is not None else 0,
            "history": [asdict(r) for r in run.history],
        }

    @staticmethod
    def snapshot(state: TrainState) -> TrainState:
        """`state` copied to the CPU: the live tensors it points at change with the next step."""

        def copied(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                return value.detach().to("cpu", copy=True)
            if isinstance(value, dict):
                return {k: copied(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(copied(v) for v in value)
            return copy.copy(value)

        return copied(state)

    def _epoch(self, run: _Fit, epoch: int, *, aux_weight: float) -> EpochResult:
        """One pass over the training split (0-based `epoch`), then validation."""
        current_lr = self.learning_rate(epoch)
        for group in run.optimizer.param_groups:
            group["lr"] = current_lr
        start = time.perf_counter()
        skipped_before = self.skipped_images
        run.model.train()
        main_sum = torch.zeros((), device=self.device)
        aux_sums: dict[str, torch.Tensor] = {}
        batches = 0
        for x, y in self.train_batches(run.generator):
            interrupt.check()
            if len(y) < 2:  # batch norm needs two samples
                continue
            loss, aux = self._step(run, x, y, aux_weight)
            main_sum += loss
            for name, value in aux.items():
                aux_sums[name] = aux_sums.get(name, 0) + value
            batches += 1
        main_loss = float(main_sum) / max(batches, 1)  # the one host sync of the epoch
        aux_losses = {k: float(v) / max(batches, 1) for k, v in aux_sums.items()}
        for name, value in {"train_loss": main_loss, **aux_losses}.items():
            if not math.isfinite(value):
                raise TrainingDiverged(f"{name} became {value} in epoch {epoch + 1}")
        last = epoch + 1 == self.cfg.epochs
        val_accuracy = self.evaluate(run.evaluated, "val", limit=None if last else self.val_epoch_size)
        return EpochResult(
            epoch=epoch + 1,
            train_loss=main_loss,
            aux_losses=aux_losses,
            val_accuracy=val_accuracy,
            lr=current_lr,
            seconds=time.perf_counter() - start,
            skipped_images=self.skipped_images - skipped_before,
        )

    def _step(
        self, run: _Fit, x: torch.Tensor, y: torch.Tensor, aux_weight: float
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One SGD step on a batch; returns the main and per-head aux losses, still on the device."""
        with self.autocast():
            out = run.model(x)
            logits, aux = out if isinstance(out, tuple) else (out, {})
            loss = F.cross_entropy(logits, y)
            aux_losses = {name: F.cross_entropy(aux_logits, y) for name, aux_logits in aux.items()}
            total = loss
            for aux_loss in aux_losses.values():
                total = total + aux_weight * aux_loss
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(total).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        if run.averaged is not None and run.ema is not None:
            run.ema.steps += 1
            run.averaged.update_parameters(run.model)
        return loss.detach().float(), {name: value.detach().float() for name, value in aux_losses.items()}

    @torch.inference_mode()
    def evaluate(self, model: nn.Module, split: str, limit: int | None = None) -> float:
        """Top-1 accuracy on "val" or "test" (aux heads dropped: eval mode); on its first `limit`
        images where set (the splits are in a seeded random order)."""
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        seen = 0
        for x, y in self._splits[split].eval_batches(limit):
            with self.autocast():
                logits = model(x)
            correct += (logits.argmax(dim=1) == y).sum()
            seen += len(y)
        return int(correct) / max(seen, 1)
