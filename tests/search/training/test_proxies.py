"""Zero-cost proxies: finite, deterministic for a seed, sensitive to the network, and signed as
`search.prescreen` asks."""

from __future__ import annotations

import math

import pytest
import torch

from search.training.proxies import PROXIES, proxy_scores, score, screen_score
from space.presets import preset
from space.scaling import scale_widths

SMALL = {"resolution": 12, "in_channels": 1, "num_classes": 4, "aux": {"head": {"pool": "adaptive", "size": 2}}}


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(16, 1, 12, 12, generator=generator), torch.randint(0, 4, (16,), generator=generator)


def test_every_proxy_is_finite_deterministic_and_tells_networks_apart(batch) -> None:
    x, y = batch
    narrow = scale_widths(preset("googlenet-small", **SMALL), 0.25, divisor=4)
    wide = scale_widths(preset("googlenet-small", **SMALL), 0.5, divisor=4)
    for name in PROXIES:
        a, again, b = score(name, narrow, x, y), score(name, narrow, x, y), score(name, wide, x, y)
        assert math.isfinite(a) and math.isfinite(b), name
        assert a == again, name  # seeded initialisation: the same score every time
        assert a != b, name


def test_scores_include_the_plain_baselines_and_the_sign(batch) -> None:
    x, y = batch
    g = scale_widths(preset("googlenet-small", **SMALL), 0.25, divisor=4)
    scores = proxy_scores(g, x, y)
    assert set(scores) == {*PROXIES, "params", "macs", "modules"}
    assert scores["modules"] == sum(len(s.modules) for s in g.stages)
    assert screen_score("-grad_norm", g, x, y) == -screen_score("grad_norm", g, x, y) == -scores["grad_norm"]


def test_naswot_scores_separable_inputs_higher() -> None:
    g = scale_widths(preset("googlenet-small", **SMALL), 0.25, divisor=4)
    y = torch.zeros(8, dtype=torch.long)
    varied = torch.randn(8, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    same = varied[:1].expand(8, -1, -1, -1).clone()  # eight copies of one image: activation codes coincide
    assert score("naswot", g, varied, y) > score("naswot", g, same, y)
