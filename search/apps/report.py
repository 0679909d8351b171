"""`inception-report` (`python -m search.apps.report <dir>`): rebuild a study's files from its
storage, an ablation's or comparison's from its runs/, or aggregate a multirun folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import optuna

from search.config.credentials import mask_credentials
from search.optimize.results import best_trial
from search.reports.ablation import aggregate_multirun, rebuild
from search.reports.study import aggregate_studies, write_results, write_trials_csv
from search.reports.supernet_search import candidates_name

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """`python -m search.apps.report <dir> [--storage URL] [--study NAME]`: rebuild the files of a
    study, an ablation or comparison (from its runs/), or aggregate a Hydra multirun folder."""
    parser = argparse.ArgumentParser(prog="python -m search.apps.report", description=main.__doc__)
    parser.add_argument("directory", type=Path, help="the study's folder (holds study.db by default)")
    parser.add_argument("--storage", help="Optuna storage URL (default: sqlite:///<directory>/study.db)")
    parser.add_argument("--study", help="study name (default: the only study in the storage)")
    args = parser.parse_args(argv)
    if not args.storage:  # an ablation, a comparison, or a multirun of them
        if (args.directory / "runs").is_dir():
            rows = rebuild(args.directory)
            print(f"rebuilt summary.csv and report.md ({len(rows)} variants) in {args.directory}")
            return 0
        if not (args.directory / "study.db").is_file() and list(args.directory.glob("*/summary.csv")):
            rows = aggregate_multirun(args.directory)
            print(f"aggregated {len(rows)} rows into {args.directory / 'summary.csv'}")
            return 0
        if not (args.directory / "study.db").is_file() and list(args.directory.glob("*/study.db")):
            rows = aggregate_studies(args.directory)
            print(
                f"aggregated {len(rows)} studies into {args.directory / 'studies.csv'} "
                f"and {args.directory / 'report.md'}"
            )
            return 0
    url = args.storage or f"sqlite:///{(args.directory / 'study.db').resolve()}"
    if not args.storage and not (args.directory / "study.db").is_file():
        print(
            f"error: directory={str(args.directory)!r}: neither a study's folder (study.db), "
            "an ablation's (runs/), nor a "
            "multirun folder of either (*/study.db, */summary.csv); for a study stored elsewhere pass --storage URL",
            file=sys.stderr,
        )
        return 2
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(url, include_best_trial=False)]
    except Exception as err:
        print(f"error: storage={mask_credentials(url)!r}: cannot be opened ({err.__class__.__name__})", file=sys.stderr)
        return 2
    own = [n for n in names if n not in {candidates_name(other) for other in names}]  # not a supernet's candidates
    name = args.study or (own[0] if len(own) == 1 else None)
    if name not in names:
        print(f"error: study={name!r}: choose one of {', '.join(names) or 'none'} with --study", file=sys.stderr)
        return 2
    _rebuild(url, name, args.directory, candidates=candidates_name(name) in names)
    print(f"rebuilt trials.csv, report.md and plots of study {name!r} in {args.directory}")
    return 0


def _rebuild(url: str, name: str, directory: Path, *, candidates: bool) -> None:
    """A study's files from its storage; a supernet search's candidates' table too."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=url)
    best = best_trial(study)
    test = study.user_attrs.get("test", {})
    write_results(
        study,
        directory,
        budget_macs=int(study.user_attrs.get("budget_macs", 0)),
        storage=mask_credentials(url),
        best=best,
        test_accuracy=test.get("accuracy") if best is not None and test.get("trial") == best.number else None,
    )
    if candidates:
        write_trials_csv(optuna.load_study(study_name=candidates_name(name), storage=url), directory / "candidates")


if __name__ == "__main__":
    raise SystemExit(main())
