"""Train a supernet once per space, data and recipe, and reuse it (`inception-supernet`).

The weights land in `<results>/supernets/<key>/supernet.pt`, the key hashing everything that
changes them: the design space and its base, the budget range, the data (source, split and
fidelity), the training recipe and the supernet's own settings (not how it is scored). A later
command with the same key loads them instead of training again. While it trains, the state
after each epoch is `checkpoint.pt` in the same folder (written whole, then renamed), so a
kill, SIGTERM or Ctrl-C costs at most the epoch in flight and the same command resumes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from search.budget.supernet import Sandwich, supernet_for_budgets
from search.config.schema import BudgetConfig, Config, ConfigError, ranges_from_config, training_identity
from search.data.sources import load_data
from search.data.splits import Splits, base_genotype
from search.training import interrupt
from search.training.supernet import SupernetEpoch, calibration_batches, fit_supernet
from search.training.tracking import Tracker
from search.training.trainer import Trainer, TrainState
from space.genotype import Genotype
from space.ranges import Ranges
from space.supernet import Supernet

__all__ = ["TrainedSupernet", "supernet_for_budget", "supernet_key", "train_supernet"]

log = logging.getLogger(__name__)

WEIGHTS, CHECKPOINT, INFO = "supernet.pt", "checkpoint.pt", "info.json"


@dataclass(frozen=True)
class TrainedSupernet:
    supernet: Supernet  # on the trainer's device, in eval mode
    trainer: Trainer  # over the data it was trained on; scores with `search.training.supernet.score`
    ranges: Ranges
    base: Genotype
    directory: Path
    key: str
    history: list[SupernetEpoch]
    seconds: float  # training seconds, summed over every run that trained it
    cached: bool  # loaded, not trained by this call

    def calibration(self, cfg: Config) -> list[torch.Tensor]:
        """The training batches every score recalibrates batch norm over (`supernet.calibration_*`)."""
        return _calibration(cfg, self.trainer)


def _calibration(cfg: Config, trainer: Trainer) -> list[torch.Tensor]:
    s = cfg.supernet
    return calibration_batches(
        trainer.data, batches=s.calibration_batches, batch_size=s.calibration_batch_size, seed=s.seed, trainer=trainer
    )


def _reference(cfg: Config) -> int:
    """The MACs `supernet.budgets` are multiples of."""
    return cfg.supernet.macs or cfg.budget.macs


def _reference_budget(cfg: Config) -> BudgetConfig:
    """`cfg.budget` at the MACs the range multiplies: what the widest subnet and each step's
    draws are projected onto."""
    return dataclasses.replace(cfg.budget, macs=_reference(cfg))


def _range(cfg: Config) -> tuple[int, int]:
    """The supernet's budgets in MACs, low and high."""
    low, high = cfg.supernet.budgets
    return round(low * _reference(cfg)), round(high * _reference(cfg))


def _identity(cfg: Config, base: Genotype) -> dict[str, Any]:
    """Everything that changes the supernet's weights but its range of budgets."""
    s = cfg.supernet
    identity: dict[str, Any] = {
        "space": dataclasses.asdict(cfg.space),
        "base": base.to_dict(),
        "data": dataclasses.asdict(cfg.data),
        "train": {**training_identity(cfg.train), "epochs": s.epochs, "polyak": None},
        "supernet": {k: getattr(s, k) for k in ("budgets", "epochs", "random_subnets", "distill", "seed")},
    }
    if s.sort_channels:  # a setting added later: off, the keys of supernets trained before it stay valid
        identity["supernet"]["sort_channels"] = True
    return identity


def _digest(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]


def supernet_key(cfg: Config, base: Genotype) -> str:
    """12 hex digits of everything that changes the supernet's weights."""
    return _digest({**_identity(cfg, base), "budget_macs": _reference(cfg)})


def supernet_for_budget(cfg: Config, base: Genotype) -> Config:
    """`cfg` with the supernet settings of one trained before whose range holds `budget.macs`
    (the same space, data and training otherwise): a search at any budget inside a trained
    supernet's range reuses it. `cfg` itself where its own supernet is trained, or none fits
    (the command trains `cfg`'s)."""
    root = Path(cfg.study.results_dir) / "supernets"
    if (root / supernet_key(cfg, base) / WEIGHTS).is_file():
        return cfg
    family = _digest(_identity(cfg, base))
    for path in sorted(root.glob(f"*/{INFO}")):
        info = json.loads(path.read_text())
        low, high = info["range_macs"]
        if info.get("family") == family and low <= cfg.budget.macs <= high and (path.parent / WEIGHTS).is_file():
            s = dataclasses.replace(cfg.supernet, macs=info["reference_macs"], budgets=list(info["budgets"]))
            return dataclasses.replace(cfg, supernet=s)
    return cfg


def _write_info(cfg: Config, base: Genotype, directory: Path, seconds: float) -> None:
    """info.json: the range and family a search at another budget looks for (supernet_for_budget)."""
    s = cfg.supernet
    info = {"key": supernet_key(cfg, base), "family": _digest(_identity(cfg, base)), "range_macs": list(_range(cfg))}
    info |= {"reference_macs": _reference(cfg), "budgets": list(s.budgets), "epochs": s.epochs, "seconds": seconds}
    partial = directory / (INFO + ".partial")
    partial.write_text(json.dumps(info, indent=1) + "\n")
    os.replace(partial, directory / INFO)


def _saved(path: Path, key: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    return saved if saved.get("key") == key else None


def _save(path: Path, payload: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)  # a kill mid-write leaves the last whole file


def _probes(draws: Sandwich, cfg: Config) -> dict[str, Genotype]:
    fixed = Sandwich(draws.ranges, draws.base, draws.budget, draws.budgets, seed=cfg.supernet.seed + 1)
    return {"largest": draws.largest, "smallest": draws.smallest} | {
        f"probe{i}": fixed.random() for i in range(cfg.supernet.probes)
    }


def _log_epoch(key: str, epochs: int, e: SupernetEpoch) -> None:
    scores = ", ".join(f"{name} {value:.4f}" for name, value in e.probes.items())
    line = "supernet %s epoch %d/%d: loss %.4f, subnets %.4f, val %s, %.1f s"
    log.info(line, key, e.epoch, epochs, e.loss, e.distill_loss, scores, e.seconds)


def train_supernet(cfg: Config, data: Splits | None = None) -> TrainedSupernet:
    """The supernet of `cfg`: loaded from its folder where one was trained with the same key,
    else trained (resumed from its checkpoint where a run was stopped) and saved there."""
    data = data if data is not None else load_data(cfg.data)
    base = base_genotype(cfg.space.base, cfg.space.genotype, data)
    try:
        ranges = ranges_from_config(cfg.space)
    except ValueError as err:
        raise ConfigError(f"space.{err}") from None
    s = cfg.supernet
    key = supernet_key(cfg, base)
    directory = Path(cfg.study.results_dir) / "supernets" / key
    trainer = Trainer(dataclasses.replace(cfg.train, epochs=s.epochs), data, augment=cfg.data.augment)
    torch.manual_seed(cfg.train.seed)
    widest = supernet_for_budgets(ranges, base, _reference_budget(cfg), tuple(s.budgets))
    supernet = trainer.prepare(Supernet(widest))
    done = _saved(directory / WEIGHTS, key)
    if done is not None:
        supernet.load_state_dict(done["supernet"])
        history = [SupernetEpoch(**h) for h in done["history"]]
        line = "supernet %s: trained before (%d epochs, %.0f s), loaded from %s"
        log.info(line, key, len(history), done["seconds"], directory)
        if not (directory / INFO).is_file():  # trained before searches at other budgets looked for it
            _write_info(cfg, base, directory, done["seconds"])
        return TrainedSupernet(supernet.eval(), trainer, ranges, base, directory, key, history, done["seconds"], True)
    directory.mkdir(parents=True, exist_ok=True)
    history, seconds = _train(cfg, supernet, trainer, ranges, base, directory, key)
    weights = {"key": key, "supernet": supernet.state_dict(), "seconds": seconds}
    _save(directory / WEIGHTS, {**weights, "history": [dataclasses.asdict(h) for h in history]})
    _write_info(cfg, base, directory, seconds)
    (directory / CHECKPOINT).unlink(missing_ok=True)
    return TrainedSupernet(supernet.eval(), trainer, ranges, base, directory, key, history, seconds, False)


def _train(
    cfg: Config, supernet: Supernet, trainer: Trainer, ranges: Ranges, base: Genotype, directory: Path, key: str
) -> tuple[list[SupernetEpoch], float]:
    s = cfg.supernet
    draws = Sandwich(ranges, base, _reference_budget(cfg), tuple(s.budgets), seed=s.seed)
    resume = _saved(directory / CHECKPOINT, key)
    spent = float(resume["seconds"]) if resume is not None else 0.0
    if resume is not None:
        log.info("supernet %s: resuming after epoch %d of %d", key, resume["epoch"], s.epochs)
    # absolute: W&B's service process may have started in another working folder
    tracker = Tracker(cfg.logger, study=f"supernet-{key}", directory=directory.resolve())
    config = {"key": key, "supernet": dataclasses.asdict(s), "train": training_identity(trainer.cfg)}
    run = tracker.start(name=f"supernet-{key}", config={**config, "range_macs": list(_range(cfg))})
    start = time.perf_counter()

    def checkpoint(state: TrainState) -> None:
        _save(directory / CHECKPOINT, {**state, "key": key, "seconds": spent + time.perf_counter() - start})

    def epoch_done(e: SupernetEpoch) -> None:
        _log_epoch(key, s.epochs, e)
        run.log(e.metrics(), step=e.epoch)

    try:
        with run.preempted_on_stop():
            history = fit_supernet(
                supernet,
                trainer,
                draws,
                random_subnets=s.random_subnets,
                distill=s.distill,
                sort_channels=s.sort_channels,
                probes=_probes(draws, cfg),
                calibration=_calibration(cfg, trainer),
                probe_images=s.probe_images,
                on_epoch=epoch_done,
                on_checkpoint=checkpoint,
                resume=resume,
            )
    except (interrupt.PoliteStop, interrupt.StopNow) as stop:
        kept = _saved(directory / CHECKPOINT, key)
        done = f"epoch {kept['epoch']} saved in {directory}" if kept else "no epoch finished"
        raise interrupt.told(stop, f"supernet {key}: {done}; the same command resumes it") from None
    seconds = spent + time.perf_counter() - start
    probes = {f"val/accuracy/{name}": value for name, value in history[-1].probes.items()}
    run.finish({"train_seconds": seconds, "epochs": len(history), **probes})
    return history, seconds
