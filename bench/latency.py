"""Does the per-block latency table predict measured latency, and how far do MACs mislead?

    python bench/latency.py [--fit 40] [--n 100] [--macs 2000000] [--repeats 30]
    python bench/latency.py --fit 4 --n 6 --repeats 3       # tiny mode (the tests)

On this machine (batch 1, one thread, float32, channels_last, Fashion-MNIST's 28x28x1 input):
1. fits a `space.latency.LatencyTable` on the blocks of `--fit` random genotypes of the default
   space around googlenet-small (any size: the space's own spread of MACs);
2. measures `--n` other random genotypes whole, twice (their agreement is the ceiling any
   predictor can reach), and compares the table's predictions with the mean of the two:
   median absolute percentage error and Kendall's tau (goals: <= 10%, >= 0.9);
3. at one budget: `--n` random genotypes width-projected into [0.7, 1] x `--macs`, as
   `budget.mode=project` trains them, measured: the spread of latency at (nearly) equal MACs
   and Kendall's tau between MACs and latency there;
4. the presets at `--macs` (at 32x32, as experiment=compare runs them), scaled as
   `search.apps.compare` scales them: MACs, measured and predicted latency.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from space.ablations import match_budget
from space.accounting import cost
from space.genotype import Genotype
from space.io import load
from space.latency import LatencyTable, Setting, fit_table, kendall_tau, measure, measure_many, median_ape
from space.model import build_model
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


def _measured(genotypes: list[Genotype], setting: Setting, repeats: int) -> list[float]:
    """Whole networks, in three interleaved passes (`space.latency.measure_many`)."""
    return measure_many(
        [(build_model(g), (g.in_channels, g.resolution, g.resolution)) for g in genotypes],
        setting,
        repeats=max(1, repeats // 3),
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = _parser().parse_args(argv)
    setting = Setting(device="cpu", batch=1, threads=1)
    base = preset("googlenet-small", **SMALL_INPUT)
    ranges = Ranges()
    table = _fit(args.fit, base, ranges, setting, args.repeats)

    test = _random(range(10_000, 10_000 + args.n), base, ranges)
    measured = _measured_twice(test, setting, args.repeats)
    ape, tau, macs = _judge_predictor(table, test, measured)

    at_budget = _random(range(20_000, 20_000 + 3 * args.n), base, ranges, macs=args.macs)[: args.n]
    mac, lat, tau_budget = _at_one_budget(table, at_budget, setting, args.repeats, args.macs)

    print("presets scaled to the budget at 32x32 (as experiment=compare runs them), and the genotype files given:")
    named = _named(args.macs, args.genotype)
    named_ms = _measure_named(table, named, setting, args.repeats)
    if args.plot:
        _plot(
            Path(args.plot),
            (macs, measured),
            (mac, lat),
            {n: (cost(g).macs, named_ms[n]) for n, g in named.items()},
            args.macs,
        )
    return {"median_ape": ape, "tau": tau, "tau_macs_at_budget": tau_budget}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit", type=int, default=40, help="genotypes whose blocks fit the table")
    parser.add_argument("--n", type=int, default=100, help="genotypes measured to judge it")
    parser.add_argument("--macs", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--genotype", nargs="*", default=[], help="genotype files (a search's best.yaml) measured beside the presets"
    )
    parser.add_argument("--plot", help="write MACs against measured latency of every network measured here (PNG)")
    return parser


def _fit(n: int, base: Genotype, ranges: Ranges, setting: Setting, repeats: int) -> LatencyTable:
    """Step 1: the per-block table, fitted on the blocks of `n` random genotypes; the time printed
    covers drawing them too."""
    start = time.perf_counter()
    table = fit_table(_random(range(n), base, ranges), setting, repeats=repeats)
    fit_s = time.perf_counter() - start
    print(
        f"table: {len(table.blocks)} blocks of {n} genotypes measured and fitted in {fit_s:.1f} s on {table.hardware}"
    )
    return table


def _measured_twice(genotypes: list[Genotype], setting: Setting, repeats: int) -> list[float]:
    """The reference latencies: two independent measurements, averaged; their agreement is the
    ceiling of any predictor, and is printed."""
    first, second = _measured(genotypes, setting, repeats), _measured(genotypes, setting, repeats)
    measured = [(a + b) / 2 for a, b in zip(first, second)]  # the reference: two independent measurements, averaged
    print(
        f"measurement repeatability: Kendall tau {kendall_tau(first, second):.3f} and median difference "
        f"{median_ape(first, second):.1f}% between the two measurements of the same networks "
        "(the ceiling of any predictor)"
    )
    return measured


def _judge_predictor(
    table: LatencyTable, test: list[Genotype], measured: list[float]
) -> tuple[float, float, list[int]]:
    """Step 2: the table's median error and Kendall tau against `measured`, and MACs' tau beside
    it. Returns the error, the tau and the genotypes' MACs."""
    start = time.perf_counter()
    predicted = [table.predict(g) for g in test]
    predict_us = (time.perf_counter() - start) / len(test) * 1e6
    ape, tau = median_ape(predicted, measured), kendall_tau(predicted, measured)
    macs = [cost(g).macs for g in test]
    print(
        f"predictor on {len(test)} other random genotypes ({min(macs) / 1e6:.2f}-{max(macs) / 1e6:.2f} MMACs, "
        f"{min(measured):.2f}-{max(measured):.2f} ms): median error {ape:.1f}% (goal <= 10%), "
        f"Kendall tau {tau:.3f} (goal >= 0.9), {predict_us:.0f} us per prediction"
    )
    print(f"MACs alone over the same genotypes: Kendall tau with latency {kendall_tau(macs, measured):.3f}")
    return ape, tau, macs


def _at_one_budget(
    table: LatencyTable, at_budget: list[Genotype], setting: Setting, repeats: int, budget: int
) -> tuple[list[int], list[float], float]:
    """Step 3: how far latency spreads at (nearly) equal MACs. Returns the MACs, the measured
    latencies and Kendall's tau between them."""
    lat = _measured(at_budget, setting, repeats)
    mac = [cost(g).macs for g in at_budget]
    tau_budget = kendall_tau(mac, lat)
    print(
        f"at one budget ({len(at_budget)} genotypes projected into 0.7-1.0 x {budget / 1e6:g} MMACs): latency "
        f"{min(lat):.2f}-{max(lat):.2f} ms ({max(lat) / min(lat):.2f}x), Kendall tau(MACs, latency) {tau_budget:.3f}; "
        f"predictor tau {kendall_tau([table.predict(g) for g in at_budget], lat):.3f}"
    )
    return mac, lat, tau_budget


def _named(budget: int, files: list[str]) -> dict[str, Genotype]:
    """Step 4's networks: the presets scaled as `search.apps.compare` scales them, and the files given."""
    named = {
        name: match_budget(preset(name, **{**SMALL_INPUT, "resolution": 32}), budget, divisor=4)
        for name in ("googlenet-small", "googlenet-naive", "googlenet-torchvision")
    }
    named |= {path: load(Path(path)) for path in files}
    return named


def _measure_named(table: LatencyTable, named: dict[str, Genotype], setting: Setting, repeats: int) -> dict[str, float]:
    """Each named network measured, printed beside its MACs and predicted latency."""
    named_ms = {}
    for name, g in named.items():
        named_ms[name] = measure(g, setting, repeats=repeats)
        print(
            f"  {name:40s} {g.resolution}x{g.resolution}  {cost(g).macs / 1e6:6.3f} MMACs  "
            f"{named_ms[name]:6.2f} ms measured  "
            f"{table.predict(g):6.2f} ms predicted"
        )
    return named_ms


def _plot(
    path: Path,
    spread: tuple[list[int], list[float]],
    at_budget: tuple[list[int], list[float]],
    named: dict[str, tuple[int, float]],
    budget: int,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([m / 1e6 for m in spread[0]], spread[1], s=12, alpha=0.6, label="random genotypes of the space")
    ax.scatter(
        [m / 1e6 for m in at_budget[0]],
        at_budget[1],
        s=12,
        alpha=0.6,
        label=f"projected to 0.7-1.0 x {budget / 1e6:g} MMACs",
    )
    for i, (name, (m, ms)) in enumerate(named.items()):
        ax.scatter([m / 1e6], [ms], marker="*", s=120, color=f"C{i + 2}", label=Path(name).parent.name or name)
    ax.set(
        xscale="log",
        xlabel="inference MMACs (log)",
        ylabel="latency, batch 1, 1 thread (ms, measured)",
        title="MACs against measured latency on this CPU",
    )
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ax.xaxis.set_major_locator(FixedLocator([1, 2, 5, 10, 20, 50, 100]))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
