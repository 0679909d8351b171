"""Does the per-block latency table predict measured latency, and how far do MACs mislead?

    python bench/latency.py [--fit 40] [--n 100] [--macs 2000000] [--repeats 30]
    python bench/latency.py --fit 4 --n 6 --repeats 3       # tiny mode (the tests)

On this machine (batch 1, one thread, float32, channels_last, Fashion-MNIST's 28x28x1 input):
1. fits a `space.latency.LatencyTable` on the blocks of `--fit` random genotypes of the default
   space around googlenet-small (any size: the space's own spread of MACs);
2. measures `--n` other random genotypes whole and compares the table's predictions with
   them: median absolute percentage error and Kendall's tau (goals: <= 10%, >= 0.9);
3. at one budget: `--n` random genotypes width-projected into [0.7, 1] x `--macs`, as
   `budget.mode=project` trains them, measured: the spread of latency at (nearly) equal MACs
   and Kendall's tau between MACs and latency there;
4. the presets at `--macs` (at 32x32, as experiment=compare runs them), scaled as
   `search.compare` scales them: MACs, measured and predicted latency.
"""

from __future__ import annotations

import argparse
import time

from space.ablations import match_budget
from space.accounting import cost
from space.genotype import Genotype
from space.latency import Setting, fit_table, kendall_tau, measure, median_ape
from space.presets import preset
from space.ranges import RandomDraw, Ranges, sample
from space.scaling import widest_fitting

SMALL_INPUT = {"resolution": 28, "in_channels": 1, "num_classes": 10, "aux": {"head": {"pool": "adaptive", "size": 2}}}


def _random(seeds: range, base: Genotype, ranges: Ranges, macs: int | None = None) -> list[Genotype]:
    found: list[Genotype] = []
    for seed in seeds:
        g = sample(RandomDraw(seed), ranges, base)
        if macs is not None:  # budget.mode=project's window: [0.7, 1] x macs
            fitted = widest_fitting(g, lambda h: cost(h).macs <= macs, divisor=ranges.width_step)
            if fitted is None or cost(fitted[0]).macs < 0.7 * macs:
                continue
            g = fitted[0]
        found.append(g)
    return found


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit", type=int, default=40, help="genotypes whose blocks fit the table")
    parser.add_argument("--n", type=int, default=100, help="genotypes measured to judge it")
    parser.add_argument("--macs", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    setting = Setting(device="cpu", batch=1, threads=1)
    base = preset("googlenet-small", **SMALL_INPUT)
    ranges = Ranges()
    start = time.perf_counter()
    table = fit_table(_random(range(args.fit), base, ranges), setting, repeats=args.repeats)
    fit_s = time.perf_counter() - start
    print(f"table: {len(table.blocks)} blocks of {args.fit} genotypes measured and fitted in {fit_s:.1f} s on {table.hardware}")

    test = _random(range(10_000, 10_000 + args.n), base, ranges)
    measured = [measure(g, setting, repeats=args.repeats) for g in test]
    start = time.perf_counter()
    predicted = [table.predict(g) for g in test]
    predict_us = (time.perf_counter() - start) / len(test) * 1e6
    ape, tau = median_ape(predicted, measured), kendall_tau(predicted, measured)
    macs = [cost(g).macs for g in test]
    print(f"predictor on {len(test)} other random genotypes ({min(macs) / 1e6:.2f}-{max(macs) / 1e6:.2f} MMACs, "
          f"{min(measured):.2f}-{max(measured):.2f} ms): median error {ape:.1f}% (goal <= 10%), "
          f"Kendall tau {tau:.3f} (goal >= 0.9), {predict_us:.0f} us per prediction")
    print(f"MACs alone over the same genotypes: Kendall tau with latency {kendall_tau(macs, measured):.3f}")

    at_budget = _random(range(20_000, 20_000 + 3 * args.n), base, ranges, macs=args.macs)[: args.n]
    lat = [measure(g, setting, repeats=args.repeats) for g in at_budget]
    mac = [cost(g).macs for g in at_budget]
    tau_budget = kendall_tau(mac, lat)
    print(f"at one budget ({len(at_budget)} genotypes projected into 0.7-1.0 x {args.macs / 1e6:g} MMACs): latency "
          f"{min(lat):.2f}-{max(lat):.2f} ms ({max(lat) / min(lat):.2f}x), Kendall tau(MACs, latency) {tau_budget:.3f}; "
          f"predictor tau {kendall_tau([table.predict(g) for g in at_budget], lat):.3f}")

    print("presets scaled to the budget at 32x32 (as experiment=compare runs them):")
    for name in ("googlenet-small", "googlenet-naive", "googlenet-torchvision"):
        g = match_budget(preset(name, **{**SMALL_INPUT, "resolution": 32}), args.macs, divisor=4)
        print(f"  {name:22s} {cost(g).macs / 1e6:6.3f} MMACs  {measure(g, setting, repeats=args.repeats):6.2f} ms measured  "
              f"{table.predict(g):6.2f} ms predicted")
    return {"median_ape": ape, "tau": tau, "tau_macs_at_budget": tau_budget}


if __name__ == "__main__":
    main()
