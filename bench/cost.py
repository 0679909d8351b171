"""Analytic cost vs fvcore on random genotypes: agreement count and median speed ratio.

    python bench/cost.py [--n 100]

For each genotype: the analytic `space.cost` (median of repeats, in microseconds) against
fvcore's trace of the built model (build + FlopCountAnalysis.total, one run: that is what a
search would pay per candidate). Goal: exact agreement on every genotype, ratio >= 1000.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings

import torch

import space


def _fvcore(genotype: space.Genotype) -> tuple[int, int, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

        start = time.perf_counter()
        model = space.build_model(genotype).eval()
        x = torch.zeros(1, genotype.in_channels, genotype.resolution, genotype.resolution)
        analysis = FlopCountAnalysis(model, (x,))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        ops = analysis.by_operator()
        seconds = time.perf_counter() - start
    return ops.get("conv", 0) + ops.get("linear", 0), int(analysis.total()), seconds


def _analytic_seconds(genotype: space.Genotype, repeats: int = 200) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        space.cost(genotype)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="number of random genotypes")
    args = parser.parse_args()
    torch.set_num_threads(2)
    agree, ratios, analytic_us = 0, [], []
    for seed in range(args.n):
        g = space.random_genotype(seed)
        c = space.cost(g)
        conv_linear, total, fv_seconds = _fvcore(g)
        agree += c.macs == conv_linear and c.fvcore_total == total
        seconds = _analytic_seconds(g)
        analytic_us.append(seconds * 1e6)
        ratios.append(fv_seconds / seconds)
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}"
    )
    print(f"agreement (conv+linear and full total): {agree}/{args.n}")
    print(f"analytic cost: median {statistics.median(analytic_us):.1f} us per genotype")
    print(
        f"speed ratio fvcore/analytic: median {statistics.median(ratios):.0f}x, min {min(ratios):.0f}x (goal >= 1000x)"
    )


if __name__ == "__main__":
    main()
