"""What a new study trains first: the hand design (warm start) and the proxy's picks (pre-screen).

Both are queued once, when the study is new, before any worker asks for a trial, with Optuna's
`enqueue_trial`, so every sampler and every worker sees them as ordinary trials: the sampler
learns from their results, `n_trials` counts them, reports list them.

- warm start: the base genotype projected onto the budget (`warm_start_genotype`), with the
  configured values of every searched setting (its recipe). It carries no searched parameters
  (the base need not lie on the space's grid of widths and ratios), only the user attribute
  `warm_start`; the objective builds it from the base.
- pre-screen: `search.prescreen_candidates` uniform draws of the space, each projected like a
  trial, scored by a zero-cost proxy on one fixed training minibatch; the best
  `search.prescreen_trials` are queued with their drawn parameters. The seconds spent are stored
  as the study attribute `prescreen_seconds` and counted in anytime curves.
"""

from __future__ import annotations

import logging
import time

import optuna
import torch

from search.budget.constraints import as_trained, feasible, project
from search.config.params import parse_params
from search.config.schema import Config, ranges_from_config
from search.data.splits import Splits, minibatch
from search.optimize.sample import sample_trial
from search.training.proxies import screen_score
from space.accounting import cost
from space.genotype import Genotype
from space.latency import LatencyTable
from space.ranges import RandomDraw

__all__ = ["PRESCREEN_BATCH", "enqueue_first_trials", "warm_start_genotype"]

log = logging.getLogger(__name__)

PRESCREEN_BATCH = 64  # images in the proxies' minibatch


def warm_start_genotype(cfg: Config, base: Genotype) -> Genotype | None:
    """The base as a trial of this search would be: width-scaled into the budget's window in
    project mode (like every draw); otherwise as designed when it fits, and scaled down into
    the window when it does not (never up: a cap is not a target). None when nothing fits."""
    if cfg.budget.mode != "project" and feasible(cost(base), cfg.budget):
        return base
    found = project(base, cfg.budget, divisor=ranges_from_config(cfg.space).width_step)
    return None if found is None else found[0]


def enqueue_first_trials(
    study: optuna.Study, cfg: Config, base: Genotype, data: Splits, latency: LatencyTable | None = None
) -> None:
    """Queue the warm start and the pre-screen's picks, once per study (`latency`: the study's
    latency table, when it has a latency budget)."""
    if study.user_attrs.get("first_trials_queued") or study.get_trials(deepcopy=False):
        return
    if cfg.search.warm_start:
        genotype = warm_start_genotype(cfg, base)
        if genotype is None:
            log.warning("warm start skipped: %s cannot be width-scaled into budget.macs=%d", base.key, cfg.budget.macs)
        else:
            study.enqueue_trial({}, user_attrs={"warm_start": True})
            log.info(
                "warm start: the base %s projected to %s (%d MACs) is trial 0",
                base.key,
                genotype.key,
                cost(genotype).macs,
            )
    if cfg.search.prescreen is not None:
        for params, attrs in _prescreen(study, cfg, base, data, latency):
            study.enqueue_trial(params, user_attrs={"prescreen": attrs})
    study.set_user_attr("first_trials_queued", True)


def _prescreen(
    study: optuna.Study, cfg: Config, base: Genotype, data: Splits, latency: LatencyTable | None
) -> list[tuple[dict, dict]]:
    """The best `prescreen_trials` of `prescreen_candidates` feasible random draws by the proxy."""
    s = cfg.search
    start = time.perf_counter()
    ranges = ranges_from_config(cfg.space)
    params = parse_params(cfg)
    batch = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(s.seed))[:PRESCREEN_BATCH]
    x, y = minibatch(data, "train", batch)
    scored: list[tuple[float, dict, str]] = []
    seen: set[str] = set()
    draws = 0
    while len(scored) < s.prescreen_candidates and draws < 20 * s.prescreen_candidates:
        draw = RandomDraw(seed=1_000_003 * (s.seed + 1) + draws)
        draws += 1
        genotype, _ = sample_trial(draw, ranges=ranges, base=base, params=params)
        trained = as_trained(genotype, cfg.budget, divisor=ranges.width_step)
        if trained is None:
            continue
        genotype = trained[0]
        predicted = latency.predict(genotype) if latency is not None else None
        if genotype.key in seen or not feasible(cost(genotype), cfg.budget, predicted):
            continue
        seen.add(genotype.key)
        scored.append((screen_score(s.prescreen, genotype, x, y, seed=cfg.train.seed), draw.params, genotype.key))
    scored.sort(key=lambda item: item[0], reverse=True)
    seconds = time.perf_counter() - start
    study.set_user_attr("prescreen_seconds", seconds)
    log.info(
        "pre-screen: %d candidates scored by %s in %.1f s; training the best %d first",
        len(scored),
        s.prescreen,
        seconds,
        min(s.prescreen_trials, len(scored)),
    )
    return [
        (params, {"proxy": s.prescreen, "score": value, "rank": rank, "of": len(scored)})
        for rank, (value, params, _key) in enumerate(scored[: s.prescreen_trials])
    ]
