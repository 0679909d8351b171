"""Scale-out: trials per second of 1, 2 and 4 worker processes on one study, per storage.

    python bench/workers.py [--seconds 1.0] [--trials 48] [--workers 1 2 4]
                            [--storages sqlite journal postgresql]

Each trial is the stand-in `bench.sleep_workers.sleep_objective` (two parameters, then a sleep), so
what is measured is the machinery: Optuna's ask/tell on the storage, our slot claims and stop
rule, heartbeats (on RDB storages, as in a real search). Workers are separate processes
(`bench.sleep_workers.sleep_study`), timed from a barrier after their imports. PostgreSQL comes from
INCEPTION_TEST_POSTGRES or the URL `.ci/postgres.sh` creates; it is skipped, saying why, when no
server answers. Goal: 4 workers >= 3.5x the trials per second of 1 worker on PostgreSQL.

The sleep stands for training: real trials last minutes, so 1 s is the demanding case for the
per-trial overhead, which is printed too (1 worker: wall time per trial minus the sleep).
"wall" runs from the barrier to the last worker's exit (so it includes each worker's first ask
and its exit); "span" from the first trial's start to the last one's end, as the storage
recorded them: the steady state. Speed-ups are given for both; the goal is judged on wall.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import uuid
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sleep_workers import sleep_study
from search.config.credentials import mask_credentials
from search.optimize.status import tally
from search.optimize.storage import open_storage
from tests.search.storages import url_or_problem


def _url(kind: str, directory: Path) -> str | None:
    url, problem = url_or_problem(kind, directory)
    if problem:
        print(f"{kind}: skipped: {problem}")
        return None
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="sleep per trial")
    parser.add_argument("--trials", type=int, default=48)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--storages", nargs="+", default=["sqlite", "journal", "postgresql"])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(
        f"{platform.machine()}, {platform.python_version()}, optuna {optuna.__version__}; "
        f"{args.trials} trials of {args.seconds} s sleep per run"
    )
    print(
        f"{'storage':<11} {'workers':>7} {'wall s':>7} {'trials/s':>9} {'vs 1':>6} {'span s':>7} {'vs 1':>6} "
        f"{'overhead/trial':>15}"
    )
    results: dict[tuple[str, int], float] = {}
    spans: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.storages:
            for workers in args.workers:
                directory = Path(tmp) / f"{kind}-{workers}"
                directory.mkdir()
                url = _url(kind, directory)
                if url is None:
                    break
                name = f"bench-{uuid.uuid4().hex[:8]}"
                beats = 5 if kind != "journal" else None  # RDB storages beat, as a real search does
                wall = sleep_study(
                    url, name, n_workers=workers, n_trials=args.trials, seconds=args.seconds, heartbeat_interval=beats
                )
                trials = optuna.load_study(study_name=name, storage=open_storage(url)).get_trials()
                counted, running, waiting = tally(trials)
                assert (counted, running, waiting) == (args.trials, 0, 0), (counted, running, waiting)
                span = (
                    max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
                ).total_seconds()
                rate = args.trials / wall
                results[kind, workers] = rate
                spans[kind, workers] = span
                base = results.get((kind, 1))
                base_span = spans.get((kind, 1))
                overhead = f"{wall / args.trials - args.seconds:.3f} s" if workers == 1 else ""
                print(
                    f"{kind:<11} {workers:>7} {wall:>7.2f} {rate:>9.2f} {rate / base if base else float('nan'):>5.2f}x "
                    f"{span:>7.2f} {base_span / span if base_span else float('nan'):>5.2f}x {overhead:>15}"
                )
    if ("postgresql", 4) in results and ("postgresql", 1) in results:
        ratio = results["postgresql", 4] / results["postgresql", 1]
        print(
            f"goal: 4 workers >= 3.5x 1 worker on PostgreSQL: {ratio:.2f}x -> {'met' if ratio >= 3.5 else 'NOT met'}"
            f" ({mask_credentials(_url('postgresql', Path(tmp)) or '')})"
        )


if __name__ == "__main__":
    main()
