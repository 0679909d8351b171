"""`inception-export <weights.pt | results folder> [--format torchscript onnx] [--out DIR]`: a
trained network as a file that runs without this project.

The exported module takes images in [0, 1] of the model card's input shape (N x C x H x W) and
returns logits: the train split's normalisation is inside it, so a deployment feeds pixels, not
statistics. TorchScript files carry the model card as the extra file `model_card.json`; ONNX
files carry it as metadata props. ONNX needs torch's ONNX exporter (the `onnx` and `onnxscript`
packages: `pip install inception-nas[onnx]`); where they are missing, --format onnx is refused with
one line before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from search.training.predict import TrainedModel, load_trained

__all__ = ["FORMATS", "Normalised", "export", "main"]

FORMATS = ("torchscript", "onnx")


class Normalised(nn.Module):
    """The network with its input normalisation: images in [0, 1] in, logits out."""

    def __init__(self, trained: TrainedModel) -> None:
        super().__init__()
        self.net = trained.model
        self.register_buffer("mean", torch.tensor(trained.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(trained.std).view(1, -1, 1, 1))

    def forward(self, images: Tensor) -> Tensor:
        return self.net((images - self.mean) / self.std)


def card(trained: TrainedModel) -> dict[str, Any]:
    return {
        "genotype_key": trained.genotype.key,
        "genotype": trained.genotype.to_dict(),
        "input_shape": list(trained.input_shape),
        "input_range": [0.0, 1.0],
        "class_names": list(trained.class_names),
        "accuracy": trained.accuracy,
    }


def export(trained: TrainedModel, out: Path, formats: tuple[str, ...] = ("torchscript",)) -> list[Path]:
    """Write the network in each format as `<out>/<genotype key>.<pt|onnx>`; the paths written."""
    if "onnx" in formats:
        _require_onnx()  # before anything is written
    module = Normalised(trained).cpu().eval()
    example = torch.rand(2, *trained.input_shape)  # a batch of 2: the batch axis stays dynamic
    out.mkdir(parents=True, exist_ok=True)
    meta = json.dumps(card(trained))
    written = []
    if "torchscript" in formats:
        path = out / f"{trained.genotype.key}.pt"
        with torch.no_grad():
            traced = torch.jit.trace(module, example)
        torch.jit.save(traced, str(path), _extra_files={"model_card.json": meta})
        written.append(path)
    if "onnx" in formats:
        written.append(_onnx(module, example, out / f"{trained.genotype.key}.onnx", meta))
    return written


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch's exporter, torch.export-based since torch 2.9)
    except ImportError:
        raise ValueError(
            "--format onnx: needs the onnx and onnxscript packages (pip install onnx onnxscript); "
            "--format torchscript needs nothing"
        ) from None


def _onnx(module: nn.Module, example: Tensor, path: Path, meta: str) -> Path:
    import onnx

    torch.onnx.export(
        module,
        (example,),
        str(path),
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        verbose=False,
    )
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "model_card", meta
    onnx.save(model, str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="inception-export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "weights",
        help="a weights .pt file, or a results folder (a study's best, or the one weights file of an ablation run)",
    )
    parser.add_argument(
        "--format", nargs="+", choices=FORMATS, default=["torchscript"], help="formats to write (default: torchscript)"
    )
    parser.add_argument(
        "--out", type=Path, help="output folder (default: <results folder>/export, or beside the weights file)"
    )
    args = parser.parse_args(argv)
    try:
        trained = load_trained(args.weights)
        assert trained.source is not None
        out = args.out or trained.source.parent.parent / "export"
        written = export(trained, out, tuple(args.format))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(
            f"{path}  ({trained.genotype.key}, input {'x'.join(map(str, trained.input_shape))} in [0, 1], "
            f"{len(trained.class_names)} classes)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
