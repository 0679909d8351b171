"""Ablations and fixed-budget comparisons: controlled experiments over variants of a genotype.

`python -m search.apps.ablate experiment=reductions|aux|...` and `python -m search.apps.compare`: every
variant is trained with identical data, epochs and seeds (seed s: same split, same batch order,
same initialisation seed), and each (variant, seed) result is stored as one JSON file under
`results/<experiment>/runs/`, keyed by genotype key, training config, data config and seed, so
running the command again retrains nothing that finished. Reports are rebuilt from those files.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import torch

from search.config.ablate import AblateConfig
from search.config.schema import ConfigError
from search.data.sources import load_data
from search.data.splits import Splits, base_genotype
from search.optimize.results import save_weights_file
from search.optimize.status import Status
from search.reports.ablation import write_ablation_report
from search.training.network import run_key, train_network
from search.training.predict import model_card
from search.training.tracking import Tracker
from search.training.trainer import Trainer, resolve_device, uses_channels_last
from space.ablations import aux_variants, match_budget, reduction_variants
from space.accounting import cost
from space.genotype import Genotype
from space.io import GENOTYPE_SUFFIXES, atomic_path
from space.latency import Setting, fit_table, measure_module
from space.presets import PRESETS
from space.scaling import scale_widths, widest_fitting

__all__ = ["latency_ms", "run_experiment", "variants"]

log = logging.getLogger(__name__)


def _base(spec: str, cfg: AblateConfig, data: Splits | None) -> Genotype:
    """A preset, genotype file or study folder (its best.yaml), with overrides and data shape."""
    path = Path(spec).expanduser()
    if path.is_dir():
        path = path / "best.yaml"
        if not path.is_file():
            raise ConfigError(f"architecture={spec!r}: a folder without best.yaml (not a study's results)")
        spec = str(path)
    elif spec not in PRESETS and path.suffix.lower() not in GENOTYPE_SUFFIXES:
        raise ConfigError(
            f"architecture={spec!r}: neither a preset ({', '.join(PRESETS)}), a {'/'.join(GENOTYPE_SUFFIXES)} "
            f"genotype file, nor a study's results folder holding best.yaml (no such folder {path.resolve()})"
        )
    overrides: dict[str, Any] = dict(cfg.space.genotype)
    aux = {k: v for k, v in dataclasses.asdict(cfg.space.aux).items() if v is not None}
    if aux:
        overrides["aux"] = {**overrides.get("aux", {}), **aux}
    return base_genotype(spec, overrides, data)


def variants(cfg: AblateConfig, data: Splits | None) -> dict[str, Genotype]:
    """The experiment's variants, in report order."""
    e = cfg.experiment
    if e.kind == "compare":
        archs = {
            Path(a).stem if a.endswith((".yaml", ".yml", ".json")) else Path(a).name: _base(a, cfg, data)
            for a in e.architectures
        }
        target = e.budget_macs or min(cost(g).macs for g in archs.values())
        try:
            matched = {name: match_budget(g, target, divisor=e.width_divisor) for name, g in archs.items()}
        except ValueError as err:
            raise ConfigError(f"experiment.budget_macs={target}: {err}") from None
        return matched if e.match == "macs" else _match_latency(matched, cfg)
    base = _base(cfg.space.base, cfg, data)
    if e.kind == "reductions":
        return reduction_variants(base, ratios=e.reduce_ratios, per_module=e.per_module, divisor=e.width_divisor)
    if e.kind == "aux":
        placements = [tuple(p) for p in e.aux_placements] if e.aux_placements is not None else None
        try:
            return aux_variants(base, placements=placements, weights=e.aux_weights)
        except ValueError as err:
            raise ConfigError(f"experiment.aux_placements={e.aux_placements!r}: {err}") from None
    return {"base": base}


def latency_setting(cfg: AblateConfig) -> Setting:
    """How a comparison measures latency: batch 1 on the trainer's device with its threads."""
    device = resolve_device(cfg.train.device)
    return Setting(
        device=str(device),
        batch=1,
        threads=cfg.train.threads or torch.get_num_threads(),
        channels_last=uses_channels_last(cfg.train.channels_last),
    )


# Width multipliers around each MACs-matched architecture whose blocks fit a comparison's table.
_TABLE_MULTIPLIERS = (0.5, 0.7, 1.0, 1.4, 2.0)
_MAX_MACS_GROWTH = 4  # a latency-matched architecture has at most 4x the MACs it was matched to


def _match_latency(matched: dict[str, Genotype], cfg: AblateConfig) -> dict[str, Genotype]:
    """Every architecture width-scaled to the same predicted latency (`experiment.match=latency`):
    `experiment.budget_latency_ms`, or the baseline's predicted latency once MACs-matched (not the
    lowest, as for MACs: latency has a floor of per-layer overheads that no narrowing removes, so
    a network of many layers may never get as fast as one of few). A per-block table fitted on
    width-scaled copies of these very architectures predicts each probe of the scaling
    (space/latency.py), so the bisection costs microseconds, not measurements.

    The baseline's target comes from the same table that judges every probe, never from a second
    measurement: a measurement taken while the machine is busier than during the fit would put
    the baseline over its own latency. Without a set budget the baseline is the target and stays
    as MACs-matched."""
    e = cfg.experiment
    setting = latency_setting(cfg)
    copies = [scale_widths(g, m, divisor=e.width_divisor) for g in matched.values() for m in _TABLE_MULTIPLIERS]
    table = fit_table(copies, setting, calibrate=len(copies))
    baseline = (
        next(n for n, a in zip(matched, e.architectures) if a == e.baseline) if e.baseline else next(iter(matched))
    )
    target = e.budget_latency_ms or table.predict(matched[baseline])
    log.info("compare: every architecture scaled to %.3f ms predicted latency on %s", target, table.hardware)
    scaled = {}
    for name, g in matched.items():
        if name == baseline and not e.budget_latency_ms:
            scaled[name] = g
            continue
        # Never past _MAX_MACS_GROWTH x its matched MACs: where latency hardly grows with width
        # (small inputs on a CPU are overhead-bound), widening would otherwise never stop.
        ceiling = _MAX_MACS_GROWTH * cost(g).macs
        found = widest_fitting(
            g,
            lambda h, ceiling=ceiling: cost(h).macs <= ceiling and table.predict(h) <= target,
            divisor=e.width_divisor,
        )
        if found is None:
            raise ConfigError(
                f"experiment.budget_latency_ms={target:g}: {name} cannot be width-scaled under it "
                "(its layers' fixed costs alone exceed it); raise it"
            )
        scaled[name] = found[0]
    return scaled


@torch.inference_mode()
def latency_ms(model: torch.nn.Module, genotype: Genotype, cfg: AblateConfig, batch: int, repeats: int) -> float:
    """Median inference latency (ms) of a trained network, as `latency_setting` measures it."""
    setting = dataclasses.replace(latency_setting(cfg), batch=batch)
    return measure_module(
        model, (genotype.in_channels, genotype.resolution, genotype.resolution), setting, repeats=repeats, warmup=3
    )


def _train_one(
    name: str, genotype: Genotype, seed: int, cfg: AblateConfig, data: Splits, tracker: Tracker, weights: Path | None
) -> dict[str, Any]:
    train_cfg = dataclasses.replace(cfg.train, seed=seed)
    trainer = Trainer(train_cfg, data, augment=cfg.data.augment, val_epoch_size=cfg.data.val_epoch_size)
    c = cost(genotype)
    run = tracker.start(
        name=f"{name}-s{seed}",
        config={
            "variant": name,
            "seed": seed,
            "genotype": genotype.to_dict(),
            "genotype_key": genotype.key,
            "train": dataclasses.asdict(train_cfg),
            "data": dataclasses.asdict(cfg.data),
            "macs": c.macs,
            "params": c.params,
        },
    )

    with run.preempted_on_stop():
        trained = train_network(genotype, trainer, seed=seed, on_epoch=lambda r: run.log(r.metrics(), step=r.epoch))
    if trained.fail_reason is not None:
        run.finish({"state": str(Status.FAILED), "fail_reason": trained.fail_reason}, failed=True)
        return {
            "state": str(Status.FAILED),
            "fail_reason": trained.fail_reason,
            "val_accuracy": None,
            "test_accuracy": None,
        }
    evaluated = trained.model
    result = {
        "state": str(Status.COMPLETE),
        "val_accuracy": trained.val_accuracy,
        "test_accuracy": trainer.evaluate(evaluated, "test"),
        "train_seconds": trained.seconds,
    }
    if weights is not None:
        state = {k: v.detach().cpu() for k, v in evaluated.state_dict().items()}
        save_weights_file(
            weights,
            genotype,
            variant=name,
            seed=seed,
            state_dict=state,
            val_accuracy=result["val_accuracy"],
            test_accuracy=result["test_accuracy"],
            **model_card(data),
        )
    if cfg.experiment.kind == "compare":
        reps = cfg.experiment.latency_repeats
        result["latency_b1_ms"] = latency_ms(evaluated, genotype, cfg, 1, reps)
        result["latency_b64_ms"] = latency_ms(evaluated, genotype, cfg, 64, max(3, reps // 4))
        result["device"] = str(trainer.device)
    run.finish({**result, "macs": c.macs})
    return result


def run_experiment(cfg: AblateConfig, directory: Path) -> list[dict[str, Any]]:
    """Train every (variant, seed) not already stored; return all stored records."""
    data = None if cfg.experiment.cost_only else load_data(cfg.data)  # costs need no data
    found = variants(cfg, data)
    runs_dir = directory / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    tracker = Tracker(cfg.logger, study=cfg.experiment.name, directory=directory)
    records = []
    seeds = range(cfg.experiment.seeds) if not cfg.experiment.cost_only else []
    total = len(found) * len(seeds)
    done = 0
    for name, genotype in found.items():
        c = cost(genotype)
        base_record = {
            "variant": name,
            "key": genotype.key,
            "macs": c.macs,
            "params": c.params,
            "train_macs": c.train_macs,
            "train_params": c.train_params,
            "genotype": genotype.to_dict(),
        }
        if cfg.experiment.cost_only:
            records.append({**base_record, "seed": None, "state": "cost-only"})
            continue
        for seed in seeds:
            path = runs_dir / f"{name}--s{seed}--{run_key(genotype, cfg.train, cfg.data, seed)}.json"
            done += 1
            weights = directory / "weights" / f"{path.stem}.pt" if cfg.keep_weights else None
            if path.is_file() and (weights is None or weights.is_file()):
                records.append(json.loads(path.read_text()))
                print(f"[{done}/{total}] {name} seed {seed}: cached", flush=True)
                continue
            result = _train_one(name, genotype, seed, cfg, data, tracker, weights)
            record = {**base_record, "seed": seed, **result}
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(record, indent=1))
            records.append(record)
            acc = f"test {result['test_accuracy']:.4f}" if result["test_accuracy"] is not None else result["state"]
            print(f"[{done}/{total}] {name} seed {seed}: {acc}", flush=True)
    write_ablation_report(records, directory, cfg=cfg)
    return records
