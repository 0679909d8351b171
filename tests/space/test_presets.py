"""The canonical presets against the paper's Table 1 and torchvision's published figures."""

from __future__ import annotations

import pytest

import space
from space.accounting import _block_cost
from space.layers import stem_layers

# Table 1's "ops" column in millions, for the rows the paper's own widths reproduce.
TABLE_1_OPS = {"3a": 128, "3b": 304, "4b": 88, "4c": 100, "4d": 119, "4e": 170, "5b": 71, "head": 1}
# The two rows the printed widths do not reproduce (see shared REFERENCE.md): computed values.
TABLE_1_INCONSISTENT = {"4a": (73, 73.61), "5a": (54, 51.08)}


def test_googlenet_reproduces_table_1_ops() -> None:
    c = space.cost(space.preset("googlenet"))
    for name, millions in TABLE_1_OPS.items():
        assert round(c.per_module[name].macs / 1e6) == millions, name
    for name, (_printed, computed) in TABLE_1_INCONSISTENT.items():
        assert round(c.per_module[name].macs / 1e6, 2) == computed, name


def test_stem_rows_of_table_1() -> None:
    """Each stem row of Table 1 from the layers the model is built from, as the counter counts them."""
    dense, separable = space.preset("googlenet"), space.preset("googlenet", stem="separable")
    dense_layers, separable_layers = stem_layers(dense), stem_layers(separable)
    conv3x3_row = _block_cost(dense_layers[-3:]).macs  # the 1x1 reduce + 3x3 of "conv 3x3/1"
    assert round(conv3x3_row / 1e6) == 360
    assert _block_cost(separable_layers[-3:]).macs == conv3x3_row  # the two stems differ only in their first conv
    assert round(_block_cost(dense_layers[:1]).macs / 1e6) == 118  # 7x7/2 dense: 118M
    assert round(_block_cost(separable_layers[:2]).macs / 1e6) == 34  # 7x7/2 separable: 34M
    # and the counter's stem block is exactly those rows
    assert space.cost(dense).per_module["stem"].macs == _block_cost(dense_layers).macs
    assert space.cost(separable).per_module["stem"].macs - conv3x3_row == _block_cost(separable_layers[:2]).macs
    # 2.7K weights in the separable 7x7 (depthwise 3x8x49 + 1x1 24->64), without the conv's bias or norm
    depthwise, pointwise = separable_layers[:2]
    weights = _block_cost([depthwise]).params + _block_cost([pointwise._replace(bare=True)]).params
    assert round(weights / 1000, 1) == 2.7


def test_paper_budget_of_one_and_a_half_billion() -> None:
    c = space.cost(space.preset("googlenet", stem="separable"))
    assert 1.49e9 < c.macs < 1.51e9
    assert c.train_macs > c.macs  # the aux heads cost only in training


def test_torchvision_preset_matches_published_figures() -> None:
    c = space.cost(space.preset("googlenet-torchvision"))
    assert c.params == 6_624_904  # GoogLeNet_Weights.IMAGENET1K_V1.meta["num_params"]
    assert round(c.fvcore_total / 1e9, 3) == 1.505
    assert round(c.macs / 1e9, 3) == 1.498  # its meta "_ops" (GFLOPS) = 1.498


def test_naive_preset_has_no_reductions_and_costs_more() -> None:
    naive = space.preset("googlenet-naive")
    assert all(m.c3_reduce is None and m.c5_reduce is None and m.pool_proj is None for _, m in naive.named_modules())
    reduced = space.preset("googlenet")
    assert [(m.c1, m.c3, m.c5) for _, m in naive.named_modules()] == [
        (m.c1, m.c3, m.c5) for _, m in reduced.named_modules()
    ]
    assert space.cost(naive).macs > 5 * space.cost(reduced).macs


def test_small_preset_is_a_few_tens_of_mmacs_at_32x32() -> None:
    g = space.preset("googlenet-small")
    assert g.resolution == 32 and g.num_classes == 10
    assert 10e6 < space.cost(g).macs < 100e6


def test_overrides_merge_into_nested_fields() -> None:
    g = space.preset("googlenet-small", num_classes=100, aux={"weight": 0.0}, stem={"conv1": 32})
    assert g.num_classes == 100 and g.aux.weight == 0.0 and g.aux.at == ("4a", "4d")
    assert g.stem.conv1 == 32 and g.stem.kind == "small"


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("alexnet", {}, "preset='alexnet': unknown"),
        ("googlenet", {"colour": 1}, "genotype.colour=1: unknown field"),
        ("googlenet", {"stem": "huge"}, "stem.kind='huge'"),
        ("googlenet", {"aux": {"at": ["9z"]}}, "aux.at='9z'"),
    ],
)
def test_bad_presets_and_overrides(name: str, overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(".", r"\.")):
        space.preset(name, **overrides)
