"""A search through one supernet (search.strategy=supernet), in three stages that each resume:

1. candidates: the study `<name>-candidates`, in the same storage, draws genotypes exactly as a
   trained search does (space, parameter names, sampler, budget, projection, constraints) and
   scores each through the supernet (search/optimize/scoring.py): `search.n_trials` of them,
   with `search.n_workers` workers each holding the supernet file's weights read-only. Its
   folder is `<study dir>/candidates/` (trials.csv, worker logs).
2. stand-alone: the best `search.train_top_k` distinct genotypes by supernet score are queued,
   with their drawn parameters, on the study `<name>` beside the hand design, and trained there
   as ordinary trials at the search's fidelity (one W&B run each, checkpoints, retries).
3. confirmation: the study's own (search.confirm), over the stand-alone values.

So everything downstream (best, export, predict, reports, confirmation) reads `<name>` as it
reads a trained search; the supernet's stages are study attributes (`SUPERNET_ATTR`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from search.config.schema import Config
from search.data.splits import Splits, base_genotype
from search.experiments.supernet import TrainedSupernet, supernet_for_budget, train_supernet
from search.optimize.first_trials import warm_start_genotype
from search.optimize.objective import Objective
from search.optimize.results import top_trials
from search.optimize.scoring import ScoreObjective
from search.optimize.storage import storage_url
from search.reports.supernet_search import SUPERNET_ATTR
from search.training.supernet import Scorer
from search.training.tracking import Tracker
from search.training.trainer import Trainer

__all__ = [
    "candidates_config",
    "candidates_dir",
    "log_candidates",
    "prepare_supernet",
    "queue_top_candidates",
    "score_objective",
    "stand_alone_config",
]

log = logging.getLogger(__name__)


def candidates_dir(directory: Path) -> Path:
    return directory / "candidates"


def prepare_supernet(cfg: Config, data: Splits) -> tuple[Config, TrainedSupernet]:
    """The supernet this search scores with: one trained before whose range holds budget.macs,
    else the one of `cfg`, trained now (a stop keeps its last epoch; the same command resumes).
    Returns `cfg` with that supernet's settings, which the candidates' workers load."""
    base = base_genotype(cfg.space.base, cfg.space.genotype, data)
    cfg = supernet_for_budget(cfg, base)
    trained = train_supernet(cfg, data)
    return cfg, trained


def candidates_config(cfg: Config, directory: Path) -> Config:
    """The candidates study's config: the search's, in the same storage, searching the
    architecture only (no recipe: a supernet cannot score one), with no hand design or
    pre-screen (those are trained on their own) and no pruner (nothing trains epochs)."""
    search = dataclasses.replace(
        cfg.search,
        storage=storage_url(cfg, directory),
        params={},
        warm_start=False,
        prescreen=None,
        pruner="none",
        budget_seconds=None,
        confirm=dataclasses.replace(cfg.search.confirm, top_k=0),
    )
    return dataclasses.replace(cfg, search=search)


def stand_alone_config(cfg: Config, queued: int) -> Config:
    """The study `<name>`'s config: the `queued` candidates and the hand design trained, each to
    the end (no pruner: each was chosen to be trained), with the search's recipe."""
    n_trials = queued + int(cfg.search.warm_start)
    search = dataclasses.replace(cfg.search, params={}, prescreen=None, pruner="none", n_trials=max(1, n_trials))
    return dataclasses.replace(cfg, search=search)


def score_objective(cfg: Config, data: Splits, directory: Path, name: str, storage: str) -> Objective:
    """A candidates worker's objective: the supernet of `cfg.supernet` (trained by then) loaded
    from its file, with this worker's share of threads."""
    trained = train_supernet(cfg, data)
    s = cfg.supernet
    scorer = Scorer(trained.supernet, trained.trainer, trained.calibration(cfg), trained.key, limit=s.score_images)
    return ScoreObjective(
        scorer=scorer,
        cfg=cfg,
        base=trained.base,
        trainer=Trainer(cfg.train, data, augment=cfg.data.augment),
        tracker=Tracker(cfg.logger, study=name, directory=directory),
        study_dir=directory,
        storage=storage,
    )


def queue_top_candidates(
    study: optuna.Study, candidates: optuna.Study, cfg: Config, trained: TrainedSupernet, seconds: float
) -> int:
    """Queue the top `search.train_top_k` candidates by score (not the hand design's genotype,
    trained anyway) on `study`, once; record the supernet's stages on it. Returns how many are
    queued (the first call's count on a resumed study)."""
    found = study.user_attrs.get(SUPERNET_ATTR)
    if found is not None:
        return len(found["queued"])
    hand = _hand_design_key(cfg, trained)
    done = candidates.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    top = [t for t in top_trials(done, len(done)) if t.user_attrs.get("key") != hand][: cfg.search.train_top_k]
    for t in top:
        study.enqueue_trial(t.params, user_attrs={"candidate": t.number, "supernet_score": t.value})
    scored = [t for t in candidates.get_trials(deepcopy=False) if "score_seconds" in t.user_attrs]
    study.set_user_attr(
        SUPERNET_ATTR,
        {
            "supernet": trained.key,
            "supernet_dir": str(trained.directory),
            "supernet_seconds": trained.seconds,
            "supernet_cached": trained.cached,
            "candidates_study": candidates.study_name,
            "scored": len(scored),
            "score_seconds": sum(float(t.user_attrs["score_seconds"]) for t in scored),
            "candidates_wall_seconds": seconds,
            "queued": [t.number for t in top],
        },
    )
    log.info(
        "supernet search: %d candidates scored; the top %d by score queued for stand-alone training: %s",
        len(scored),
        len(top),
        ", ".join(f"#{t.number} {t.value:.4f}" for t in top),
    )
    return len(top)


def _hand_design_key(cfg: Config, trained: TrainedSupernet) -> str | None:
    found = warm_start_genotype(cfg, trained.base) if cfg.search.warm_start else None
    return found.key if found is not None else None


def log_candidates(cfg: Config, candidates: optuna.Study, directory: Path) -> None:
    """The scored candidates as one W&B run holding one table (not a run each)."""
    trials = [t for t in candidates.get_trials(deepcopy=False) if "score_seconds" in t.user_attrs]
    if not trials:
        return
    columns = ["trial", "key", "macs", "params", "supernet_score", "score_seconds"]
    rows: list[list[Any]] = [
        [
            t.number,
            t.user_attrs["key"],
            t.user_attrs["macs"],
            t.user_attrs["params"],
            t.value,
            t.user_attrs["score_seconds"],
        ]
        for t in trials
    ]
    run = Tracker(cfg.logger, study=candidates.study_name, directory=directory).start(
        name=f"{candidates.study_name}-table",
        config={"candidates": len(rows), "supernet": trials[0].user_attrs["scored_by"]},
    )
    run.log_table("candidates", columns, rows)
    best = max(trials, key=lambda t: t.value or 0.0)
    run.finish({"candidates": len(rows), "best_supernet_score": best.value, "best_trial": best.number})
