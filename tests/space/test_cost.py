"""Analytic cost == fvcore (conv+linear and full total) == numel, on presets and random genotypes."""

from __future__ import annotations

import pytest
import torch

import space


def _aux_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.aux.parameters())


def _check(genotype: space.Genotype, fvcore, *, train: bool) -> None:
    c = space.cost(genotype)
    model = space.build_model(genotype)
    ops, total = fvcore(model, genotype, train=train)
    numel = sum(p.numel() for p in model.parameters())
    conv_linear = ops.get("conv", 0) + ops.get("linear", 0)
    if train:
        assert c.train_macs == conv_linear
        assert c.train_fvcore_total == total
        assert c.train_params == numel
    else:
        assert c.macs == conv_linear
        assert c.norm_flops == ops.get("batch_norm", 0)
        assert c.pool_flops == ops.get("adaptive_avg_pool2d", 0)
        assert c.fvcore_total == total
        assert c.params == numel - _aux_params(model)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", list(space.PRESETS))
def test_presets_match_fvcore_and_numel(name: str, train: bool, fvcore) -> None:
    _check(space.preset(name), fvcore, train=train)


@pytest.mark.parametrize("name", ["googlenet", "googlenet-torchvision"])
def test_separable_stem_matches_fvcore(name: str, fvcore) -> None:
    _check(space.preset(name, stem="separable"), fvcore, train=False)


# Ten seeds in the inner loop, all hundred in the full suite.
@pytest.mark.parametrize("seed", [s if s < 10 else pytest.param(s, marks=pytest.mark.slow) for s in range(100)])
def test_random_genotypes_match_fvcore_and_numel(seed: int, fvcore) -> None:
    _check(space.random_genotype(seed), fvcore, train=seed % 4 == 0)


def test_per_module_sums_to_totals() -> None:
    c = space.cost(space.preset("googlenet"))
    assert list(c.per_module)[:2] == ["stem", "3a"] and list(c.per_module)[-3:] == ["head", "aux_4a", "aux_4d"]
    assert c.macs == sum(b.macs for n, b in c.per_module.items() if not n.startswith("aux_"))
    assert c.train_macs == sum(b.macs for b in c.per_module.values())
    assert all(isinstance(v, int) for v in (c.macs, c.params, c.train_macs, c.train_params))


def test_aux_heads_cost_nothing_at_inference() -> None:
    with_aux = space.cost(space.preset("googlenet"))
    without = space.cost(space.preset("googlenet", aux={"at": []}))
    assert with_aux.macs == without.macs and with_aux.params == without.params
    assert with_aux.train_macs > without.train_macs == without.macs


def test_naive_module_formula() -> None:
    """The naive module's MACs are the plain sum of its three convs on the full input."""
    g = space.preset("googlenet-naive")
    s = g.shapes["3a"]
    m = dict(g.named_modules())["3a"]
    c_in, hw = s.in_channels, s.size * s.size
    expected = hw * c_in * (m.c1 + 9 * m.c3 + 25 * m.c5)
    assert space.cost(g).per_module["3a"].macs == expected


@pytest.mark.parametrize("seed", range(5))
def test_the_stage_shared_space_is_counted_exactly(seed: int, fvcore) -> None:
    """`space.share=stage` draws ordinary genotypes: the same exact counter holds for them."""
    _check(space.random_genotype(seed, space.Ranges(share="stage")), fvcore, train=seed % 2 == 0)
