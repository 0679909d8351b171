from __future__ import annotations

import pytest
import torch

import space

SIZES = {"googlenet-small": 32}


@pytest.mark.parametrize("name", list(space.PRESETS))
def test_forward_shapes_in_train_and_eval(name: str) -> None:
    g = space.preset(name)
    model = space.build_model(g)
    x = torch.randn(2, g.in_channels, g.resolution, g.resolution)
    model.train()
    logits, aux = model(x)
    assert logits.shape == (2, g.num_classes)
    assert set(aux) == set(g.aux.at)
    assert all(a.shape == (2, g.num_classes) for a in aux.values())
    model.eval()
    calls = []
    for head in model.aux.values():
        head.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, g.num_classes)
    assert calls == []  # aux heads are never run at inference


def test_without_aux_heads_training_returns_only_logits() -> None:
    g = space.preset("googlenet-small", aux={"at": []})
    out = space.build_model(g).train()(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


@pytest.mark.parametrize("seed", range(5))
def test_channels_last_gives_the_same_output(seed: int) -> None:
    g = space.random_genotype(seed)
    torch.manual_seed(seed)
    model = space.build_model(g).eval()
    x = torch.randn(4, g.in_channels, g.resolution, g.resolution)
    with torch.no_grad():
        reference = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-4)


def test_layers_follow_the_genotype() -> None:
    g = space.preset("googlenet-torchvision")
    model = space.build_model(g)
    convs = [m for m in model.blocks["3a"].branch5.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 1), (3, 3)]  # torchvision's 3x3 "5x5" branch
    assert all(c.bias is None for c in convs)  # batch norm replaces the conv bias
    naive = space.build_model(space.preset("googlenet-naive"))
    assert len(naive.blocks["4a"].branch3) == 1 and len(naive.blocks["4a"].branch_pool) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_channels_last_amp_forward() -> None:
    g = space.preset("googlenet-small")
    model = space.build_model(g).cuda().to(memory_format=torch.channels_last).eval()
    x = torch.randn(8, 3, 32, 32, device="cuda").to(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
        assert model(x).shape == (8, 10)
