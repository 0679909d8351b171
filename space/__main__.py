"""`python -m space <preset or genotype file> [--stem separable] [--json]` (or `inception-cost`):
the cost table of a genotype, block by block, like the paper's Table 1."""

from __future__ import annotations

import argparse
import json
import sys

from space.accounting import Cost, cost
from space.genotype import STEM_KINDS, Genotype
from space.io import resolve
from space.presets import PRESETS

__all__ = ["main", "table"]


def _row(name: str, out: str, params: int, macs: int) -> str:
    return f"{name:<10} {out:>14} {params:>14,} {macs:>17,} {macs / 1e6:>10.2f}"


def table(genotype: Genotype, c: Cost) -> str:
    """A Table-1-like text table: one row per block, then the totals."""
    g = genotype
    stem_out = g.stem_out_size
    outputs = {"stem": f"{stem_out}x{stem_out}x{g.stem.conv3}", "head": f"1x1x{g.num_classes}"}
    for name, shape in g.shapes.items():
        outputs[name] = f"{shape.size}x{shape.size}x{shape.out_channels}"
    lines = [
        f"genotype {g.key}  input {g.resolution}x{g.resolution}x{g.in_channels}  "
        f"stem {g.stem.kind}  norm {g.norm}  aux {','.join(g.aux.at) or 'none'}",
        f"{'block':<10} {'output':>14} {'params':>14} {'MACs':>17} {'MMACs':>10}",
    ]
    for name, block in c.per_module.items():
        lines.append(_row(name, outputs.get(name, "(train only)"), block.params, block.macs))
    lines += [
        _row("inference", "", c.params, c.macs),
        _row("training", "", c.train_params, c.train_macs),
        f"fvcore total at inference (conv+linear {c.macs:,}, batch norm {c.norm_flops:,}, "
        f"adaptive pool {c.pool_flops:,}): {c.fvcore_total:,}",
        "MACs: multiply-adds of conv and linear layers (weights only, one fused multiply-add = 1).",
    ]
    return "\n".join(lines)


def to_json(genotype: Genotype, c: Cost) -> dict:
    return {
        "key": genotype.key,
        "macs": c.macs,
        "params": c.params,
        "train_macs": c.train_macs,
        "train_params": c.train_params,
        "norm_flops": c.norm_flops,
        "pool_flops": c.pool_flops,
        "fvcore_total": c.fvcore_total,
        "per_module": {name: vars(block) for name, block in c.per_module.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m space", description=__doc__)
    parser.add_argument("genotype", help=f"a preset ({', '.join(PRESETS)}) or a .yaml/.json genotype file")
    parser.add_argument("--stem", choices=STEM_KINDS, help="replace the stem kind")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        genotype = resolve(args.genotype, **({"stem": args.stem} if args.stem else {}))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    c = cost(genotype)
    print(json.dumps(to_json(genotype, c), indent=2) if args.json else table(genotype, c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
