"""The hard compute budget: feasibility before anything is built, and projection into it.

Constraint values follow Optuna's convention (<= 0 is feasible) and are relative, (cost - cap)
/ cap, so MACs and parameters weigh alike in the samplers' infeasibility score.

Projection (`budget.mode=project`, `space.scaling.widest_fitting`) multiplies every width of the
sampled network (stem and aux heads included) by one factor m, rounded to multiples of
`space.width_step`, with m found by bisection on the analytic cost; then it adds `width_step`
channels to the Inception modules' widths, pass by pass, while the network still fits, which
closes the gap that rounding leaves. Each probe is a ~30 us formula, so a projection takes
milliseconds. The trial is infeasible only when even 1/64 of the widths exceeds the cap or the
result falls below `min_fraction * macs`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from search.config.schema import BudgetConfig, Config, ConfigError, ranges_from_config
from search.training.trainer import resolve_device, uses_channels_last
from space.accounting import Cost, cost
from space.genotype import Genotype
from space.latency import LatencyTable, Setting, fit_table, hardware
from space.ranges import RandomDraw, Ranges, sample, smallest
from space.scaling import scale_widths, widest_fitting

log = logging.getLogger(__name__)

LATENCY_FIT_GENOTYPES = 40  # random draws of the space whose blocks a new latency table measures

__all__ = [
    "check_reachable",
    "constraints",
    "feasible",
    "latency_setting",
    "latency_table",
    "load_latency_table",
    "project",
]

_NARROWEST = 1 / 64  # the lowest width multiplier projection tries (space.scaling.widest_fitting)


def constraints(c: Cost, budget: BudgetConfig, latency_ms: float | None = None) -> dict[str, float]:
    """Optuna constraint values (<= 0 feasible). In project mode the window's floor is a
    constraint too: a network that could not be projected into it is not trained. With a
    latency budget, the latency constraint is there when `latency_ms` (the network's predicted
    latency) is given: the objective always gives it, and MACs-only questions (the warm start's
    shape) leave it out."""
    values = {"macs": (c.macs - budget.macs) / budget.macs}
    if budget.params is not None:
        values["params"] = (c.params - budget.params) / budget.params
    if budget.mode == "project":
        values["macs_floor"] = (budget.min_fraction * budget.macs - c.macs) / budget.macs
    if budget.latency_ms is not None and latency_ms is not None:
        values["latency"] = (latency_ms - budget.latency_ms) / budget.latency_ms
    return values


def feasible(c: Cost, budget: BudgetConfig, latency_ms: float | None = None) -> bool:
    return all(v <= 0 for v in constraints(c, budget, latency_ms).values())


def project(genotype: Genotype, budget: BudgetConfig, *, divisor: int) -> tuple[Genotype, float] | None:
    """The widest width-scaled `genotype` inside [min_fraction * macs, macs] (and under the
    params cap), with its uniform multiplier; None if none lands in the window."""

    def under_caps(g: Genotype) -> bool:
        c = cost(g)
        return c.macs <= budget.macs and (budget.params is None or c.params <= budget.params)

    found = widest_fitting(genotype, under_caps, divisor=divisor)
    if found is None or cost(found[0]).macs < budget.min_fraction * budget.macs:
        return None
    return found


def as_trained(genotype: Genotype, budget: BudgetConfig, *, divisor: int) -> tuple[Genotype, float] | None:
    """A drawn network as the search trains it, with its width multiplier: in `budget.mode=project`
    width-scaled into the budget's window (None: no width lands there); in the other modes as
    drawn (1.0), for the constraints to judge."""
    if budget.mode != "project":
        return genotype, 1.0
    return project(genotype, budget, divisor=divisor)


def check_reachable(budget: BudgetConfig, ranges: Ranges, base: Genotype, latency: LatencyTable | None = None) -> None:
    """Refuse, before a study is opened, a budget that no network of the space can meet: every
    trial would be infeasible. In project mode the space reaches down to 1/64 of its widths."""
    g = smallest(ranges, base)
    if budget.mode == "project":
        g = scale_widths(g, _NARROWEST, divisor=ranges.width_step)
    c = cost(g)
    where = f"{base.resolution}x{base.resolution} input"
    fastest = latency.predict(g) if latency is not None and budget.latency_ms is not None else None
    if fastest is not None and fastest > budget.latency_ms:  # type: ignore[operator]
        raise ConfigError(
            f"budget.latency_ms={budget.latency_ms:g}: below the smallest network of this space (predicted "
            f"{fastest:.2f} ms at {where} on this machine); raise it, or lower space.modules_per_stage"
        )
    if c.macs > budget.macs:
        raise ConfigError(
            f"budget.macs={budget.macs}: below the smallest network of this space ({c.macs:,} MACs at {where}); "
            "raise it, or lower space.width_scale / space.modules_per_stage"
        )
    if budget.params is not None and c.params > budget.params:
        raise ConfigError(
            f"budget.params={budget.params}: below the smallest network of this space ({c.params:,} parameters); "
            "raise it, or lower space.width_scale / space.modules_per_stage"
        )


def latency_setting(cfg: Config) -> Setting:
    """How a study's latency budget is measured: the training device, `budget.latency_batch`
    images, `budget.latency_threads` threads, float32, the trainer's memory format."""
    device = resolve_device(cfg.train.device)
    return Setting(
        device=str(device),
        batch=cfg.budget.latency_batch,
        threads=cfg.budget.latency_threads,
        channels_last=uses_channels_last(cfg.train.channels_last),
    )


def load_latency_table(path: str | Path, setting: Setting) -> LatencyTable:
    """The table at `path`, refused in one line when it was fitted on another machine or setting."""
    try:
        table = LatencyTable.load(Path(path).expanduser())
        table.check(setting, path)
    except ValueError as err:
        raise ConfigError(f"budget.latency_table={str(path)!r}: {str(err).split(': ', 1)[1]}") from None
    return table


def _default_table_path(cfg: Config, base: Genotype, setting: Setting) -> Path:
    machine = re.sub(r"[^a-z0-9.]+", "-", hardware(setting.device).lower()).strip("-")
    layout = "cl" if setting.channels_last else "nchw"
    name = (
        f"{machine}-b{setting.batch}-t{setting.threads}-{setting.dtype}-{layout}-"
        f"{base.resolution}px-{base.in_channels}ch.json"
    )
    return Path(cfg.study.results_dir) / "latency-tables" / name


def latency_table(cfg: Config, base: Genotype) -> tuple[LatencyTable, Path] | None:
    """The study's latency table when it has a latency budget: `budget.latency_table`, or the
    default file for this machine, setting and input shape, fitted now on the blocks of
    `LATENCY_FIT_GENOTYPES` draws of the space (as trials are drawn: projected in project mode)."""
    if cfg.budget.latency_ms is None:
        return None
    setting = latency_setting(cfg)
    path = (
        Path(cfg.budget.latency_table).expanduser()
        if cfg.budget.latency_table
        else _default_table_path(cfg, base, setting)
    )
    if path.is_file():
        return load_latency_table(path, setting), path
    if cfg.budget.latency_table:
        raise ConfigError(
            f"budget.latency_table={cfg.budget.latency_table!r}: no such file (null fits one in {path.parent})"
        )
    ranges = ranges_from_config(cfg.space)
    draws = [sample(RandomDraw(seed), ranges, base) for seed in range(LATENCY_FIT_GENOTYPES)]
    if cfg.budget.mode == "project":
        draws = [p[0] for p in (as_trained(g, cfg.budget, divisor=ranges.width_step) for g in draws) if p] or draws
    log.info(
        "latency table: measuring the blocks of %d draws of the space on %s (once per machine and setting)",
        len(draws),
        hardware(setting.device),
    )
    table = fit_table(draws, setting)
    table.save(path)
    log.info("latency table: %d blocks, saved to %s", len(table.blocks), path)
    return table, path
