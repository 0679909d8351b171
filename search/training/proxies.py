"""Zero-cost proxies: training-free scores of an untrained network from one minibatch.

Each proxy maps (freshly initialised network, images, labels) to one float, higher meaning
"predicted to train better". They cost one or two forward/backward passes, so thousands of
candidates can be scored for the price of training one network. Which of them rank *this* space
well is measured, not assumed: `bench/proxies.py` prints Kendall's tau and Spearman's rho of each
against trained validation accuracy at one budget, beside plain `params` and `macs`, which many
proxies are known to track (see ../shared/BENCHMARKING.md).

- naswot (Mellor et al., ICML 2021): log-determinant of the kernel of ReLU on/off patterns
  across the minibatch; networks that separate inputs well score high.
- synflow (Tanaka et al. 2020; Abdelfattah et al., ICLR 2021): data-free synaptic flow, the sum
  of |theta * dR/dtheta| for R the output of the network with |theta| weights on an all-ones input.
- grad_norm: the norm of the loss gradient over all weights.
- snip (Lee et al. 2019): the sum of |theta * dL/dtheta|.
- jacob_cov (Mellor et al. 2020 preprint): how uncorrelated the input Jacobians of the images are.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from space.accounting import cost
from space.genotype import Genotype
from space.model import build_model

__all__ = ["PROXIES", "proxy_scores", "score", "screen_score"]

Proxy = Callable[[nn.Module, Tensor, Tensor], float]


def _logits(model: nn.Module, x: Tensor) -> Tensor:
    out = model(x)
    return out[0] if isinstance(out, tuple) else out


def naswot(model: nn.Module, x: Tensor, y: Tensor) -> float:
    codes: list[Tensor] = []

    def hook(_module: nn.Module, _inputs: tuple[Tensor, ...], output: Tensor) -> None:
        codes.append((output.detach() > 0).flatten(1).float())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        model.train()
        with torch.no_grad():
            _logits(model, x)
    finally:
        for h in handles:
            h.remove()
    c = torch.cat(codes, dim=1).double()
    kernel = c @ c.T + (1 - c) @ (1 - c).T  # units where two inputs agree (both on or both off)
    return float(torch.linalg.slogdet(kernel).logabsdet)


def synflow(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model = model.double().eval()  # eval: batch norm at its initial identity, dropout off
    signs = {}
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if p.is_floating_point():
                signs[name] = torch.sign(p)
                p.abs_()
    model.zero_grad()
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64)
    _logits(model, ones).sum().backward()
    with torch.no_grad():
        return sum(float((p * p.grad).abs().sum()) for p in model.parameters() if p.grad is not None)


def grad_norm(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.train()
    model.zero_grad()
    F.cross_entropy(_logits(model, x), y).backward()
    with torch.no_grad():
        return float(sum(p.grad.norm() ** 2 for p in model.parameters() if p.grad is not None) ** 0.5)


def snip(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.train()
    model.zero_grad()
    F.cross_entropy(_logits(model, x), y).backward()
    with torch.no_grad():
        return float(sum((p * p.grad).abs().sum() for p in model.parameters() if p.grad is not None))


def jacob_cov(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.train()
    x = x.clone().requires_grad_(True)
    _logits(model, x).sum().backward()
    jacobian = x.grad.flatten(1).double()  # type: ignore[union-attr]
    corr = torch.corrcoef(jacobian)
    eigenvalues = torch.linalg.eigvalsh(torch.nan_to_num(corr))
    k = 1e-5
    return float(-torch.sum(torch.log(eigenvalues.clamp_min(0) + k) + 1.0 / (eigenvalues.clamp_min(0) + k)))


PROXIES: dict[str, Proxy] = {
    "naswot": naswot,
    "synflow": synflow,
    "grad_norm": grad_norm,
    "snip": snip,
    "jacob_cov": jacob_cov,
}


def score(name: str, genotype: Genotype, x: Tensor, y: Tensor, *, seed: int = 0) -> float:
    """`name`'s score of `genotype`, freshly initialised with `seed`, on the batch (x, y)."""
    torch.manual_seed(seed)
    model = build_model(genotype)
    return PROXIES[name](model, x, y)


def screen_score(spec: str, genotype: Genotype, x: Tensor, y: Tensor, *, seed: int = 0) -> float:
    """The pre-screen's score for `search.prescreen=spec`: a proxy's name, or `-name` where
    lower predicts better. On this project's space at a fixed budget the gradient proxies
    correlate negatively with accuracy after short training (bench/proxies.py), so `-grad_norm`
    is the one the README recommends."""
    sign, name = (-1.0, spec[1:]) if spec.startswith("-") else (1.0, spec)
    return sign * score(name, genotype, x, y, seed=seed)


def proxy_scores(genotype: Genotype, x: Tensor, y: Tensor, *, seed: int = 0) -> dict[str, float]:
    """Every proxy's score, plus the plain baselines a proxy must beat to be worth its time:
    `params`, `macs` (inference) and `modules` (depth: the number of Inception modules)."""
    c = cost(genotype)
    scores = {name: score(name, genotype, x, y, seed=seed) for name in PROXIES}
    depth = sum(len(stage.modules) for stage in genotype.stages)
    return {**scores, "params": float(c.params), "macs": float(c.macs), "modules": float(depth)}
