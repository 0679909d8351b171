from __future__ import annotations

import pytest

import space
from space.ablations import aux_variants, match_budget, reduction_variants


def test_reduction_variants_and_their_costs() -> None:
    base = space.preset("googlenet")
    variants = reduction_variants(base, ratios=(0.5,))
    names = [name for name, _ in base.named_modules()]
    assert list(variants) == [
        "base",
        "naive",
        *[f"naive-{n}" for n in names],
        "3x3-reduce-only",
        "5x5-reduce-only",
        "ratio-0.5",
    ]
    assert variants["base"] == base
    naive = variants["naive"]
    assert all(m.c3_reduce is None and m.c5_reduce is None and m.pool_proj is None for _, m in naive.named_modules())
    # The naive variant's MACs are the sum of the module formula without reductions, module by module.
    c = space.cost(naive)
    for name, m in naive.named_modules():
        s = naive.shapes[name]
        assert c.per_module[name].macs == s.size * s.size * s.in_channels * (m.c1 + 9 * m.c3 + 25 * m.c5)
    one = variants["naive-4a"]
    assert [n for n, m in one.named_modules() if m.c3_reduce is None] == ["4a"]
    assert all(m.c5_reduce is None and m.c3_reduce is not None for _, m in variants["3x3-reduce-only"].named_modules())
    assert all(m.c3_reduce is None and m.c5_reduce is not None for _, m in variants["5x5-reduce-only"].named_modules())
    half = dict(variants["ratio-0.5"].named_modules())["3a"]
    assert (half.c3_reduce, half.c5_reduce) == (64, 16)  # 0.5 x 128, 0.5 x 32
    # The paper's motivation, visible without training: each naive module costs more.
    for name in names:
        assert space.cost(variants[f"naive-{name}"]).per_module[name].macs > space.cost(base).per_module[name].macs


def test_aux_variants_keep_inference_cost() -> None:
    base = space.preset("googlenet-small")
    variants = aux_variants(base)
    assert list(variants)[:3] == ["aux-none", "aux-4a+4d", "aux-4a"]
    assert {"aux-4a+4d-w0", "aux-4a+4d-w0.1", "aux-4a+4d-w1"} <= set(variants)
    costs = {name: space.cost(g) for name, g in variants.items()}
    assert len({c.macs for c in costs.values()}) == 1  # inference MACs unchanged
    assert costs["aux-none"].train_macs == costs["aux-none"].macs < costs["aux-4a+4d"].train_macs
    assert variants["aux-4a+4d-w0.1"].aux.weight == 0.1 and variants["aux-4a"].aux.at == ("4a",)


@pytest.mark.parametrize("name", list(space.PRESETS))
@pytest.mark.parametrize("fraction", [0.3, 0.5, 1.0, 2.0, 3.0])
def test_match_budget_within_one_percent(name: str, fraction: float) -> None:
    g = space.preset(name)
    target = int(space.cost(g).macs * fraction)
    scaled = match_budget(g, target)
    macs = space.cost(scaled).macs
    assert 0.99 * target <= macs <= target
    assert [len(s.modules) for s in scaled.stages] == [len(s.modules) for s in g.stages]
    assert all(w % 8 == 0 for _, m in scaled.named_modules() for w in (m.c1, m.c3, m.c5))


def test_match_budget_refuses_an_impossible_budget() -> None:
    with pytest.raises(ValueError, match="budget=1000: cannot scale"):
        match_budget(space.preset("googlenet"), 1000)
