"""A supernet search's candidates stage without the supernet: what each sampler costs per
candidate as the study grows to 1,000 trials, against the seconds a score takes.

    python bench/candidates.py [--trials 1000] [--samplers random tpe tpe-multivariate evolution]
                               [--score-seconds 0.38] [overrides of conf/search.yaml ...]

Each candidate goes through the study's real path (search/optimize/scoring.py's ScoreObjective
in search/optimize/workers.py's worker loop, on a SQLite file as the main job's storage): the
sampler's proposal, the draw, projection onto the budget, the duplicate check, the slot claim,
every stored attribute. Only the supernet's score is replaced by a stand-in that costs nothing
and still ranks networks (their parameter count, normalised), so that model-based samplers
have a signal to model. Printed per sampler: seconds per candidate over each hundred trials and
the ratio of that overhead to `--score-seconds` (a score through the main job's supernet on one
thread, measured by bench/supernet.py and by a real search's candidates/trials.csv, score_s):
a sampler "keeps up" while its overhead stays below the score's cost. Goal: >= 1,000 candidates
in 10 minutes on 2 cores (2 workers) with the score included.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.apps.search import precheck
from search.config.schema import Config
from search.data.sources import load_data, register
from search.data.splits import base_genotype
from search.optimize.scoring import ScoreObjective
from search.optimize.study import open_study
from search.optimize.workers import run_worker
from search.training.tracking import Tracker
from search.training.trainer import Trainer
from space.accounting import cost
from space.genotype import Genotype

GOAL_CANDIDATES, GOAL_SECONDS, CORES = 1000, 600.0, 2


@dataclasses.dataclass(frozen=True)
class _StandIn:
    """A Scorer's interface at no cost: a genotype's parameter count, normalised."""

    key: str = "stand-in"

    def refusal(self, genotype: Genotype) -> str | None:
        return None

    def __call__(self, genotype: Genotype) -> float:
        return cost(genotype).params / 1e6


def _run(cfg: Config, sampler: str, trials: int, directory: Path, step: int) -> list[float]:
    """Cumulative seconds after each candidate of one study; a progress line every `step`."""
    own = dataclasses.replace(
        cfg, search=dataclasses.replace(cfg.search, sampler=sampler, n_trials=trials, params={}, warm_start=False)
    )
    data = load_data(own.data)
    study, storage = open_study(own, f"candidates-{sampler}", directory)
    objective = ScoreObjective(
        scorer=_StandIn(),  # type: ignore[arg-type]
        cfg=own,
        base=base_genotype(own.space.base, own.space.genotype, data),
        trainer=Trainer(own.train, data),
        tracker=Tracker(dataclasses.replace(own.logger, name="none"), study=sampler, directory=directory),
        study_dir=directory,
    )
    start, marks = time.perf_counter(), []

    def mark(*_: object) -> None:
        marks.append(time.perf_counter() - start)
        if len(marks) % step == 0:
            print(f"  {sampler}: {len(marks)} candidates in {marks[-1]:.1f} s", flush=True)

    run_worker(study, objective, trials, heartbeats=False, callbacks=[mark])
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=GOAL_CANDIDATES)
    parser.add_argument("--samplers", nargs="+", default=["random", "tpe", "tpe-multivariate", "evolution"])
    parser.add_argument("--score-seconds", type=float, default=0.38, help="one score on one thread (measured)")
    args, overrides = parser.parse_known_args()
    register()
    cfg = precheck(["logger=none", "data=digits", "data.subset=null", "data.val_size=null", *overrides])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    step = max(1, args.trials // 10)
    print(f"{args.trials} candidates per sampler, SQLite, 1 worker; a score costs {args.score_seconds:.2f} s")
    rows = []
    with tempfile.TemporaryDirectory() as name:
        for sampler in args.samplers:
            marks = _run(cfg, sampler, args.trials, Path(name) / sampler, step)
            # every finished trial, duplicates of an earlier draw too (they count no slot): blocks of `step`
            starts = list(range(0, len(marks), step))
            per = [
                (marks[min(i + step, len(marks)) - 1] - (marks[i - 1] if i else 0.0)) / (min(i + step, len(marks)) - i)
                for i in starts
            ]
            minutes = (marks[-1] + args.trials * args.score_seconds) * GOAL_CANDIDATES / args.trials / CORES / 60
            within = "within" if minutes * 60 <= GOAL_SECONDS else "past"
            rows.append(
                f"| {sampler} | {', '.join(f'{p:.3f}' for p in per)} | {per[-1] / args.score_seconds:.2f} | "
                f"{minutes:.1f} ({within} {GOAL_SECONDS / 60:.0f} min) |"
            )
    print(
        f"| sampler | s/candidate, each {step} trials | overhead/score at the end | minutes for {GOAL_CANDIDATES}, "
        f"scores included, {CORES} workers |"
    )
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
