"""Use a trained network: one call loads a weights file (or a results folder's best) into a model
ready for inference, one predicts on a batch of raw images.

A weights file is self-contained (`model_card` is saved with every one): the genotype rebuilds
the network, and the input shape, the train split's channel statistics and the class names say
how to feed it and read its output, so no config, data set or checkout is needed to use it.

    from search.training.predict import load_trained
    trained = load_trained("results/fashion-mnist")      # or .../weights/trial-0007.pt
    trained.predict(images)                               # ['Sneaker', 'Bag', ...]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search.data.splits import Splits
from space.genotype import Genotype
from space.model import build_model

__all__ = ["TrainedModel", "load_trained", "model_card", "weights_file"]

CARD_KEYS = ("input_shape", "mean", "std", "class_names")


def model_card(data: Splits) -> dict[str, Any]:
    """What a weights file carries beside the weights: how to feed the network and read it."""
    return {
        "input_shape": [data.channels, data.resolution, data.resolution],
        "mean": list(data.mean),
        "std": list(data.std),
        "class_names": list(data.class_names),
    }


def weights_file(path: str | Path) -> Path:
    """A weights file itself, or the one a results folder keeps: a study's confirmed best
    (`confirmed/trial-<nnnn>.pt`, retrained at the confirmation fidelity), else its best trial
    (`weights/trial-<nnnn>.pt`, the only one left when a study ends) or an ablation's single run."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        confirmed = sorted((path / "confirmed").glob("*.pt")) if (path / "confirmed").is_dir() else []
        if len(confirmed) == 1:
            return confirmed[0]
        found = sorted((path / "weights").glob("*.pt")) if (path / "weights").is_dir() else []
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(p.name for p in found[:4])
            raise ValueError(
                f"weights={str(path)!r}: {len(found)} weights files in {path / 'weights'} ({names}, ...): name one"
            )
        raise ValueError(
            f"weights={str(path)!r}: a folder without weights/*.pt (run with keep_weights=true, or a finished study)"
        )
    raise ValueError(
        f"weights={str(path)!r}: neither a weights .pt file nor a results folder holding weights/ "
        "(no such file or folder)"
    )


@dataclass(frozen=True)
class TrainedModel:
    """A trained network in eval mode with what it needs to take raw images."""

    model: nn.Module
    genotype: Genotype
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    accuracy: dict[str, float] = field(default_factory=dict)  # "val", and "test" where measured
    source: Path | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        g = self.genotype
        return (g.in_channels, g.resolution, g.resolution)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def preprocess(self, images: Any) -> Tensor:
        """Raw images as training saw them: uint8 (0-255) or floats in [0, 1]; one image or a
        batch, channels first or last (HW, HWC, CHW, NHW, NHWC, NCHW), any size (resized as at
        load time), grey or colour (converted to the network's channels); normalised."""
        x = _as_batch(images, self.input_shape[0])
        x = _to_channels(x, self.input_shape[0])
        size = self.input_shape[1]
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < x.shape[-1])
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
        return ((x - mean) / std).to(self.device)

    @torch.no_grad()
    def logits(self, images: Any) -> Tensor:
        return self.model(self.preprocess(images)).float().cpu()

    def probabilities(self, images: Any) -> Tensor:
        return self.logits(images).softmax(dim=1)

    def predict(self, images: Any) -> list[str]:
        """The class name of each image."""
        return [self.class_names[i] for i in self.logits(images).argmax(dim=1).tolist()]


def _as_batch(images: Any, channels: int) -> Tensor:
    """N x C x H x W float32 in [0, 1], from any of the accepted layouts and dtypes."""
    if isinstance(images, (list, tuple)):  # PIL images or arrays, one per image
        images = np.stack([np.asarray(image) for image in images])
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, Tensor) else images.detach().cpu()
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.ndim == 2:  # H x W
        return x[None, None]
    if x.ndim == 3:  # one image with a channel axis (first or last), else a batch of grey ones
        if x.shape[-1] in (1, 3, 4) and x.shape[0] not in (1, 3, 4):
            return x.permute(2, 0, 1)[None]
        if x.shape[0] in (1, 3, 4) and (x.shape[0] == channels or channels != 1):
            return x[None]
        return x[:, None]
    if x.ndim == 4:
        if x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
            return x.permute(0, 3, 1, 2)
        return x
    raise ValueError(f"images of shape {list(x.shape)}: expected HW, HWC, CHW, NHW, NHWC or NCHW")


def _to_channels(x: Tensor, channels: int) -> Tensor:
    have = x.shape[1]
    if have == 4:  # drop alpha
        x, have = x[:, :3], 3
    if have == channels:
        return x
    if have == 1:
        return x.expand(-1, channels, -1, -1)
    if channels == 1 and have == 3:  # ITU-R 601 luma, as Pillow's convert("L")
        return (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    raise ValueError(f"images with {have} channels: the network takes {channels}")


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """The network of a weights file (or a results folder's, see `weights_file`), in eval mode on
    `device`, with what it needs to take raw images. A ValueError names a bad file."""
    file = weights_file(path)
    try:
        saved = torch.load(file, map_location="cpu", weights_only=True)
        genotype = Genotype.from_dict(saved["genotype"])
        state = saved["state_dict"]
    except Exception as err:
        raise ValueError(
            f"weights={str(file)!r}: not a weights file of this project ({err.__class__.__name__}: {err})"
        ) from None
    missing = [k for k in CARD_KEYS if k not in saved]
    if missing:  # a checkpoint, or a file from before model cards: its inputs' scale is unknown
        raise ValueError(
            f"weights={str(file)!r}: holds no {', '.join(missing)} (a training checkpoint or an older file): "
            "raw images cannot be prepared for it"
        )
    model = build_model(genotype)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"weights={str(file)!r}: its weights do not fit genotype {genotype.key} ({str(err).splitlines()[0]})"
        ) from None
    model.eval().to(device)
    accuracy = {
        name: float(saved[f"{name}_accuracy"]) for name in ("val", "test") if saved.get(f"{name}_accuracy") is not None
    }
    return TrainedModel(
        model=model,
        genotype=genotype,
        class_names=tuple(saved["class_names"]),
        mean=tuple(saved["mean"]),
        std=tuple(saved["std"]),
        accuracy=accuracy,
        source=file,
    )
