"""The supernet: a genotype run on the shared weights equals its stand-alone subnet; the subnet's
cost is the genotype's exact cost; a genotype outside the supernet is one line naming the
decision."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

import space
from space.ranges import RandomDraw, Ranges, sample
from space.supernet import Supernet, supernet_space

# googlenet-small on 8x8 single-channel images, as the search on digits and Fashion-MNIST sees it
BASE = space.preset(
    "googlenet-small", resolution=8, in_channels=1, num_classes=10, aux={"head": {"pool": "adaptive", "size": 2}}
)
SHARES = ("module", "stage")


def _supernet(share: str) -> tuple[Supernet, Ranges]:
    ranges = Ranges(share=share)
    torch.manual_seed(0)
    net = Supernet(supernet_space(ranges, BASE))
    return net, ranges


def _genotypes(ranges: Ranges, n: int) -> list[space.Genotype]:
    return [sample(RandomDraw(seed), ranges, BASE) for seed in range(n)]


@pytest.fixture(scope="module", params=SHARES)
def trained(request: pytest.FixtureRequest) -> tuple[Supernet, Ranges]:
    """A supernet whose batch-norm statistics are not the initial ones: a few training-mode
    passes of random subnets, so that the equality below covers the statistics too."""
    net, ranges = _supernet(request.param)
    net.train()
    with torch.no_grad():
        for g in _genotypes(ranges, 4):
            net(torch.randn(16, 1, 8, 8), g)
    return net.eval(), ranges


def test_a_genotype_on_the_shared_weights_equals_its_subnet(trained: tuple[Supernet, Ranges]) -> None:
    net, ranges = trained
    x = torch.randn(8, 1, 8, 8)
    for g in _genotypes(ranges, 20):
        sub = net.subnet(g).eval()
        with torch.no_grad():
            assert torch.allclose(net(x, g), sub(x), atol=1e-5), g.key


def test_the_widest_and_the_base_are_held(trained: tuple[Supernet, Ranges]) -> None:
    net, _ = trained
    x = torch.randn(4, 1, 8, 8)
    for g in (BASE, space.scale_widths(BASE, 0.5, divisor=4)):
        with torch.no_grad():
            assert torch.allclose(net(x, g), net.subnet(g).eval()(x), atol=1e-5)


@pytest.mark.parametrize("share", SHARES)
def test_a_subnets_cost_is_the_exact_count_and_fvcores(share: str) -> None:
    from fvcore.nn import FlopCountAnalysis

    net, ranges = _supernet(share)
    for g in _genotypes(ranges, 20):
        sub = net.subnet(g).eval()
        c = space.cost(g)
        assert sum(p.numel() for p in sub.parameters()) == c.train_params  # aux heads included
        flops = FlopCountAnalysis(sub, torch.zeros(1, 1, 8, 8))
        flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_op = flops.by_operator()
        assert by_op.get("conv", 0) + by_op.get("linear", 0) == c.macs, g.key


def _module(g: space.Genotype, **change: object) -> space.Genotype:
    """`g` with its first module changed."""
    first = g.stages[0].modules[0]
    stage = dataclasses.replace(g.stages[0], modules=(dataclasses.replace(first, **change), *g.stages[0].modules[1:]))
    return g.replace(stages=(stage, *g.stages[1:]))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda g: _module(g, c3=4096), r"^3a\.c3=4096: above the supernet's maximum \d+$"),
        (lambda g: _module(g, pool_proj=None), r"^3a\.pool_proj=None: the supernet's pool branch always projects"),
        (lambda g: g.replace(num_classes=7), r"^num_classes=7: the supernet's is 10$"),
        (
            lambda g: g.replace(
                stages=(*g.stages[:1], dataclasses.replace(g.stages[1], modules=g.stages[1].modules * 2), *g.stages[2:])
            ),
            r"^stage4\.modules=10: above the supernet's 5$",
        ),
        (
            lambda g: g.replace(stem=dataclasses.replace(g.stem, conv3=4096)),
            r"^stem\.conv3=4096: above the supernet's maximum",
        ),
    ],
)
def test_a_genotype_outside_the_supernet_is_one_line_naming_the_decision(change, message: str) -> None:
    net, _ = _supernet("module")
    with pytest.raises(ValueError, match=message):
        net.subnet(change(BASE))


def test_a_branch_keeps_its_weights_whatever_the_width_of_the_branch_before_it() -> None:
    """The next module reads four runs of the widest layout: narrowing 3a's 1x1 branch must not
    shift which of 3b's input weights see 3a's 3x3 branch."""
    net, ranges = _supernet("module")
    g = _genotypes(ranges, 1)[0]
    first = g.stages[0].modules[0]
    narrow = _module(g, c1=first.c1 // 2)
    a, b = net.subnet(g).blocks["3b"], net.subnet(narrow).blocks["3b"]
    seen_by_3x3 = slice(first.c1, first.c1 + first.c3), slice(first.c1 // 2, first.c1 // 2 + first.c3)
    assert torch.equal(a.branch1[0].weight[:, seen_by_3x3[0]], b.branch1[0].weight[:, seen_by_3x3[1]])


def test_channel_sorting_keeps_the_widest_network_and_puts_the_important_channels_first(
    trained: tuple[Supernet, Ranges],
) -> None:
    """A permutation of channels that only their fixed readers see: the widest network (every
    channel used) computes the same function; afterwards each sorted layer's readers weigh its
    channels in decreasing order; a narrow subnet changes (it now keeps the important ones)."""
    net, _ = trained
    sorted_net = copy.deepcopy(net)
    moved: list[tuple[torch.Tensor, int]] = []
    sorted_net.sort_channels(lambda t, dim, order: moved.append((t, dim)))
    x = torch.randn(4, 1, 8, 8)
    widest = _widest(net)
    with torch.no_grad():
        assert torch.allclose(net(x, widest), sorted_net(x, widest), atol=1e-4)
    block = sorted_net.blocks["3a"]
    importance = block.conv3.conv.weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(importance[:-1] >= importance[1:])
    reader = sorted_net.stem_reduce.conv.weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(reader[:-1] >= reader[1:])
    assert any(t is block.reduce3.conv.weight and dim == 0 for t, dim in moved)  # the optimiser hears of it
    narrow = space.scale_widths(BASE, 0.5, divisor=4)
    with torch.no_grad():
        assert not torch.allclose(net(x, narrow), sorted_net(x, narrow), atol=1e-4)


def _widest(net: Supernet) -> space.Genotype:
    """Every channel of the supernet used: each position at its widest, every stage at full depth."""
    s = net.space
    stages = []
    for stage, widths in zip(s.base.stages, s.stages):
        modules = tuple(
            space.InceptionModule(w.c1, w.c3_reduce, w.c3, w.c5_reduce, w.c5, w.pool_proj, large=s.large_kinds[0])
            for w in widths
        )
        stages.append(dataclasses.replace(stage, modules=modules))
    stem = dataclasses.replace(s.base.stem, conv1=s.stem[0], reduce=s.stem[1], conv3=s.stem[2])
    return s.base.replace(stem=stem, stages=tuple(stages))
