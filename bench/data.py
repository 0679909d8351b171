"""The folder pipeline against a plain one, and whether training waits on data.

A generated tree of JPEGs (`--size`, default 500x375, ImageNet's typical size; noise over a
per-class colour) is read at 64, 128 and 224 pixels by (a) a plain `Dataset` that opens each
file with Pillow, decodes it whole, converts it to RGB, takes the same random crop and flip,
and resizes; (b) search/data/folder.py
streaming from disk (JPEG draft decoding, crop and resize in one step); (c) search/data/folder.py
from its cache (`data.cache=true`, built once beforehand; its build time is printed apart).
All use a DataLoader with the same number of workers and batch size; images per second over
full passes, after one warm-up pass. Then `googlenet-small` trains at 64 pixels for a pass
over the cached data through search.training.trainer's streamed source: the share of each step's time
spent waiting for its batch.

Goals: (b) >= 1.0x (a); (c) >= 5x (a); waiting < 10% of step time with the cache.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.config.schema import TrainConfig
from search.data.folder import SCALES, KeyedSampler, Transform, _crop_box, loader
from search.data.sources import data_config, load_data
from search.training.trainer import Trainer, _Streamed
from space.model import build_model
from space.presets import preset


def make_tree(root: Path, n_images: int, classes: int, size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n_images):
        label = i % classes
        folder = root / "train" / f"class{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        colour = np.array([(label * 53) % 256, (label * 97) % 256, (label * 151) % 256], dtype=np.float32)
        pixels = np.clip(colour + rng.normal(0, 50, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)
    return root


class PlainFiles(torch.utils.data.Dataset):
    """The baseline: open, decode whole, convert, crop, flip, resize (no draft, no fused box)."""

    def __init__(self, paths: list[str], resolution: int) -> None:
        self.paths = paths
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        index, seed = key
        rng = np.random.default_rng(seed)
        with Image.open(self.paths[index]) as image:
            image = image.convert("RGB")
        box = tuple(round(v) for v in _crop_box(*image.size, rng, SCALES["paper"]))
        image = image.crop(box).resize((self.resolution, self.resolution), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return torch.from_numpy(np.asarray(image).copy())


def images_per_second(dataset: torch.utils.data.Dataset, workers: int, passes: int) -> float:
    sampler = KeyedSampler()
    data = loader(dataset, sampler, batch_size=64, workers=workers, pin_memory=False)  # type: ignore[arg-type]
    rng = np.random.default_rng(1)
    n = len(dataset)  # type: ignore[arg-type]
    rates = []
    for p in range(passes + 1):
        sampler.keys = [(int(i), int(s)) for i, s in zip(rng.permutation(n), rng.integers(0, 2**31, n))]
        start = time.perf_counter()
        for _ in data:
            pass
        if p:  # the first pass starts the workers
            rates.append(n / (time.perf_counter() - start))
    return float(np.median(rates))


def waiting_share(root: Path, workers: int, steps: int) -> tuple[float, float]:
    """googlenet-small at 64 px on the cached data: (share of step time waiting, seconds/step)."""
    cfg = data_config(
        "folder", path=str(root), resolution=64, cache=True, workers=workers, val_fraction=0.1, test_fraction=0.1
    )
    data = load_data(cfg)
    train_cfg = TrainConfig(epochs=1, batch_size=64, threads=None)
    trainer = Trainer(train_cfg, data)
    genotype = preset(
        "googlenet-small",
        resolution=64,
        in_channels=3,
        num_classes=data.num_classes,
        aux={"head": {"pool": "adaptive", "size": 2}},
    )
    run = trainer._start(build_model(genotype))
    source = trainer._splits["train"]
    assert isinstance(source, _Streamed)
    waited = total = 0.0
    done = 0
    generator = torch.Generator().manual_seed(0)
    for warm in (True, False):
        batches = source.train_batches(generator, 64, True)
        last = time.perf_counter()
        for x, y in batches:
            got = time.perf_counter()
            trainer._step(run, x, y, 0.3)
            now = time.perf_counter()
            if not warm:
                waited += got - last
                total += now - last
                done += 1
            last = now
            if not warm and done >= steps:
                break
    return waited / total, total / max(done, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 224])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="training steps timed for the waiting share")
    parser.add_argument(
        "--size", type=int, nargs=2, default=[500, 375], metavar=("WIDTH", "HEIGHT"), help="of the generated JPEGs"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_tree(Path(tmp), args.images, classes=10, size=tuple(args.size))
        paths = sorted(str(p) for p in (root / "train").rglob("*.jpg"))
        files = [(Path(p), 0) for p in paths]
        print(
            f"{len(paths)} JPEGs of {args.size[0]}x{args.size[1]}, {args.workers} loader workers, batch 64, "
            f"{torch.get_num_threads()} torch threads"
        )
        print(
            f"{'pixels':>6} {'plain img/s':>12} {'folder img/s':>13} {'cached img/s':>13} {'folder/plain':>13} "
            f"{'cached/plain':>13} {'cache build s':>14}"
        )
        from search.data.folder import FolderSplit, build_cache

        for r in args.resolutions:
            plain = images_per_second(PlainFiles(paths, r), args.workers, args.passes)
            streamed = images_per_second(FolderSplit(files, Transform(r, 3, train=True)), args.workers, args.passes)
            start = time.perf_counter()
            cache = build_cache(files, root=root, resolution=r, channels=3, workers=args.workers)
            built = time.perf_counter() - start
            cached = images_per_second(
                FolderSplit(files, Transform(r, 3, train=True), cache), args.workers, args.passes
            )
            print(
                f"{r:>6} {plain:>12.0f} {streamed:>13.0f} {cached:>13.0f} {streamed / plain:>12.2f}x "
                f"{cached / plain:>12.2f}x {built:>14.1f}"
            )
        share, per_step = waiting_share(root, args.workers, args.steps)
        print(
            f"googlenet-small at 64 px from the cache: waiting {100 * share:.1f}% of step time "
            f"({per_step * 1e3:.0f} ms/step; goal < 10%)"
        )


if __name__ == "__main__":
    main()
