from __future__ import annotations

import pytest

import space
from space.accounting import cost
from space.ranges import RandomDraw, Ranges, random_genotype, sample, smallest


def test_random_genotype_is_deterministic_per_seed() -> None:
    assert space.random_genotype(7) == space.random_genotype(7)
    assert len({space.random_genotype(s).key for s in range(50)}) == 50


def test_draws_stay_inside_the_ranges() -> None:
    ranges = Ranges()
    base = space.preset(ranges.base)
    for seed in range(50):
        draw = RandomDraw(seed)
        g = sample(draw, ranges)
        for i, (stage, (low, high)) in enumerate(zip(g.stages, ranges.modules_per_stage)):
            assert low <= len(stage.modules) <= high
            assert draw.params[f"stage{3 + i}.modules"] == len(stage.modules)
        for name, m in g.named_modules():
            assert m.c1 % ranges.width_step == 0 and m.large in ranges.large_kinds
            assert draw.params[f"{name}.c3"] == m.c3
            ratio = draw.params[f"{name}.r3"]
            assert (m.c3_reduce is None) == (ratio is None)
        assert set(g.aux.at) <= set(ranges.aux_modules)
        assert g.stem == base.stem and g.resolution == base.resolution and g.norm == base.norm


def test_random_genotypes_span_the_cost_range() -> None:
    macs = [space.cost(space.random_genotype(s)).macs for s in range(100)]
    assert max(macs) > 2 * min(macs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width_scale": (0.0, 1.0)}, "width_scale"),
        ({"modules_per_stage": ((2, 1), (1, 1), (1, 1))}, r"modules_per_stage\[0\]"),
        ({"reduce_ratios": (0.5, -1.0)}, "reduce_ratios"),
        ({"large_kinds": ("7x7",)}, "large_kinds"),
        ({"aux_weight": (0.5, 0.1)}, "aux_weight"),
    ],
)
def test_bad_ranges(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Ranges(**kwargs)


def test_ranges_must_match_the_base_stages() -> None:
    with pytest.raises(ValueError, match="needs one range per stage"):
        sample(RandomDraw(0), Ranges(modules_per_stage=((1, 2),)))


@pytest.mark.parametrize(
    "ranges",
    [
        Ranges(),
        Ranges(reduce_ratios=(0.5, 1.0, None)),
        Ranges(reduce_ratios=(None,)),
        Ranges(large_kinds=("5x5", "3x3x2")),
    ],
    ids=["default", "with-naive", "naive-only", "no-3x3"],
)
def test_smallest_is_no_costlier_than_any_sampled_network(ranges: Ranges) -> None:
    floor = cost(smallest(ranges))
    sampled = [cost(random_genotype(seed, ranges)) for seed in range(300)]
    assert floor.macs <= min(c.macs for c in sampled)
    assert floor.params <= min(c.params for c in sampled)


def test_the_stage_shared_space_has_at_most_16_decisions_and_shares_them() -> None:
    from space.accounting import cost
    from space.ranges import SPLITS, RandomDraw, Ranges, sample

    ranges = Ranges(share="stage")
    for seed in range(50):
        draw = RandomDraw(seed)
        g = sample(draw, ranges)
        assert len(draw.params) <= 16, sorted(draw.params)
        assert {k.split(".")[0] for k in draw.params} <= {"stage3", "stage4", "stage5", "large", "aux"}
        assert len({m.large for _, m in g.named_modules()}) == 1  # one large-branch kind per network
        for i, stage in enumerate(g.stages):
            ratio = draw.params[f"stage{3 + i}.reduce"]
            assert all((m.c3_reduce is None) == (ratio is None) for m in stage.modules)
            assert draw.params[f"stage{3 + i}.split"] in SPLITS
        assert cost(g).macs > 0
    module_draw = RandomDraw(0)
    sample(module_draw, Ranges())
    assert len(module_draw.params) > 16  # the per-module space stays the default


def test_an_unknown_share_is_refused() -> None:
    import pytest

    from space.ranges import Ranges

    with pytest.raises(ValueError, match=r"share='layer': must be one of module, stage"):
        Ranges(share="layer")


@pytest.mark.parametrize("share", ["module", "stage"])
def test_every_decision_keeps_its_choices_from_draw_to_draw(share: str) -> None:
    """Optuna refuses a categorical whose choices change between trials, so a decision's choices
    must not depend on what was drawn before it (e.g. a stage's module count)."""
    seen: dict[str, tuple] = {}

    class Recording(RandomDraw):
        def choice(self, name, choices):  # type: ignore[no-untyped-def]
            assert seen.setdefault(name, tuple(choices)) == tuple(choices), name
            return super().choice(name, choices)

    for seed in range(200):
        g = sample(Recording(seed), Ranges(share=share))
        assert set(g.aux.at) <= {name for name, _ in g.named_modules()}
    assert "aux.at" in seen if share == "stage" else "aux.4a" in seen
