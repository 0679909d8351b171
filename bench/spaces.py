"""Which design space holds better networks? EDFs of random networks, RegNet style.

    python bench/spaces.py [--networks 30] [--jobs 2] [--out spaces.png] [override ...]
    python bench/spaces.py --networks 3 data=digits data.subset=null ...     # tiny mode (the tests)

Radosavovic et al. ("Designing Network Design Spaces", CVPR 2020) compare design spaces by the
empirical distribution function (EDF) of the error of networks drawn at random from each at one
budget. Here: `--networks` random networks of the main job's config (conf/search.yaml and the
overrides) in each of `space.share=module` (every module's widths on their own) and
`space.share=stage` (shared per stage), projected onto the budget and trained once at the
search's fidelity. Prints each space's decisions per network and its validation accuracy's
quantiles, and the share of networks of one space above the other's median; draws both EDFs
(fraction of networks with error below e) into `--out`.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from noise import _networks, _train  # the noise benchmark's draws and its one training run

from search.apps.search import precheck
from search.config.schema import Config, ranges_from_config
from search.data.sources import register
from space.ranges import RandomDraw, sample

SPACES = ("module", "stage")


def _space(cfg: Config, share: str) -> Config:
    return dataclasses.replace(cfg, space=dataclasses.replace(cfg.space, share=share))


def _decisions(cfg: Config) -> tuple[int, int]:
    counts = []
    for seed in range(50):
        draw = RandomDraw(seed)
        sample(draw, ranges_from_config(cfg.space))
        counts.append(len(draw.params))
    return min(counts), max(counts)


def _plot(errors: dict[str, list[float]], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for share, values in errors.items():
        xs = sorted(values)
        ax.step([100 * x for x in xs], [(i + 1) / len(xs) for i in range(len(xs))], where="post", label=share)
    ax.set_xlabel("validation error (%)")
    ax.set_ylabel("fraction of networks with error < x")
    ax.legend(title="space.share")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="spaces.png")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the main job's config")
    args = parser.parse_args()
    register()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = precheck([*args.overrides, f"study.results_dir={tmp}", "logger=none"])
    configs = {share: _space(cfg, share) for share in SPACES}
    jobs = [(c, g, v, cfg.train.seed) for c in configs.values() for g, v in _networks(c, args.networks)]
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_train, jobs))
    accuracy = {
        share: [r["val"] for r in results[i * args.networks : (i + 1) * args.networks]]
        for i, share in enumerate(SPACES)
    }
    print(f"{args.networks} random networks per space, {cfg.budget.macs:,} MACs, {cfg.train.epochs} epochs")
    print("| space.share | decisions per network | val accuracy: min | 25% | median | 75% | max |")
    print("|---|---|---|---|---|---|---|")
    for share, values in accuracy.items():
        q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
        low, high = _decisions(configs[share])
        print(
            f"| {share} | {low}-{high} | {min(values):.4f} | {q[0]:.4f} | {q[1]:.4f} | {q[2]:.4f} | {max(values):.4f} |"
        )
    median_module = statistics.median(accuracy["module"])
    above = sum(v > median_module for v in accuracy["stage"]) / len(accuracy["stage"])
    print(f"share of stage-space networks above the module space's median: {100 * above:.0f}% (50%: no difference)")
    _plot({share: [1 - v for v in values] for share, values in accuracy.items()}, args.out)
    print(f"EDF plot: {args.out}")


if __name__ == "__main__":
    main()
