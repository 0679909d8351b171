"""Class-per-folder image data (ImageNet's layout: `<path>/train/<class>/*.jpg`, optionally
`<path>/val/<class>/*`), streamed from disk through a DataLoader so memory stays flat whatever
the data set's size; or, with `data.cache=true`, decoded once to uint8 arrays a little above the
crop size, in a file beside the data, so a search of many short trials decodes each JPEG once.

Both paths hand the same transform a PIL image: training takes the paper's random crop (8% to
100% of the area, aspect ratio 3/4 to 4/3; `light`: 35% to 100%) resized to `data.resolution`, a
horizontal flip and optionally photometric distortion; evaluation resizes the shorter side to
resolution / 0.875 and takes the centre crop. Every random draw comes from a seed the trainer's
generator hands out with each index, so augmentation is the same whatever the number of worker
processes, and a resumed fit sees what an uninterrupted one would.

A file that cannot be decoded during training is skipped: its batch shrinks by one, and the
count reaches the epoch's metrics, the log and the trial summary (`skipped_images`); a worker
never dies of it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance

from search.config.schema import ConfigError

__all__ = [
    "FolderSplit",
    "IMAGE_SUFFIXES",
    "Tree",
    "build_cache",
    "channel_stats",
    "check_tree",
    "scan",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
EVAL_CROP = 0.875  # evaluation: shorter side to resolution / 0.875, then the centre crop
CACHE_MARGIN = 8 / 7  # the cache keeps squares this much above the crop (256 for 224)
SCALES = {"paper": (0.08, 1.0), "light": (0.35, 1.0)}
RATIO = (3 / 4, 4 / 3)


@dataclass(frozen=True)
class Tree:
    classes: tuple[str, ...]
    train: list[tuple[Path, int]]
    val: list[tuple[Path, int]] | None  # the val/ folder, where there is one


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _class_folders(root: Path, part: str) -> dict[str, Path]:
    folder = root / part
    classes = (
        {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")}
        if folder.is_dir()
        else {}
    )
    return classes


def _first_image(folder: Path) -> Path | None:
    return next((p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), None)


def check_tree(root: Path) -> None:
    """What `scan` refuses, found without listing every file (a class folder's first image is
    enough), so a command can refuse a bad tree before it writes anything."""
    where = f"data.path={str(root)!r}"
    if not root.is_dir():
        raise ConfigError(f"{where}: no such folder")
    train = _class_folders(root, "train")
    if not train:
        raise ConfigError(
            f"{where}: not a class-per-folder tree (expected {root}/train/<class>/<image>, "
            f"optionally {root}/val/<class>/<image>)"
        )
    val = _class_folders(root, "val") if (root / "val").is_dir() else None
    if val is not None and set(val) != set(train):
        only_train, only_val = sorted(set(train) - set(val)), sorted(set(val) - set(train))
        raise ConfigError(
            f"{where}: train/ and val/ have different classes (only in train: {', '.join(only_train) or 'none'}; "
            f"only in val: {', '.join(only_val) or 'none'})"
        )
    firsts = []
    for part, folders in (("train", train), ("val", val or {})):
        for name, folder in sorted(folders.items()):
            first = _first_image(folder)
            if first is None:
                raise ConfigError(
                    f"{where}: class folder {part}/{name} holds no image "
                    f"({', '.join(sorted(s.lstrip('.') for s in IMAGE_SUFFIXES))})"
                )
            if part == "train":
                firsts.append(first)
    if not any(_readable(p) for p in firsts[:64]):
        raise ConfigError(f"{where}: no readable image (the first image of each class in train/ tried)")


def scan(root: Path) -> Tree:
    """The tree's classes (sorted folder names) and files; one ConfigError line on a bad tree."""
    check_tree(root)
    where = f"data.path={str(root)!r}"
    train = _class_folders(root, "train")
    val = _class_folders(root, "val") if (root / "val").is_dir() else None
    classes = tuple(sorted(train))
    parts: dict[str, list[tuple[Path, int]]] = {}
    for part, folders in (("train", train), ("val", val)):
        if folders is None:
            continue
        files = []
        for label, name in enumerate(classes):
            found = _images(folders[name])
            if not found:
                raise ConfigError(
                    f"{where}: class folder {part}/{name} holds no image "
                    f"({', '.join(sorted(s.lstrip('.') for s in IMAGE_SUFFIXES))})"
                )
            files += [(p, label) for p in found]
        parts[part] = files
    return Tree(classes=classes, train=parts["train"], val=parts.get("val"))


def _readable(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
        return True
    except Exception:
        return False


# -- the transform: one PIL image in, one uint8 C x H x W array out -----------------------------
def _crop_box(
    width: int, height: int, rng: np.random.Generator, scale: tuple[float, float]
) -> tuple[float, float, float, float]:
    """The paper's random crop (section 6; torchvision's RandomResizedCrop draws the same): a
    region of a random share of the area and aspect ratio; the centre square if ten draws fail."""
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(RATIO[0]), math.log(RATIO[1])))
        w = math.sqrt(target * aspect)
        h = math.sqrt(target / aspect)
        if 0 < w <= width and 0 < h <= height:
            x0 = rng.uniform(0, width - w)
            y0 = rng.uniform(0, height - h)
            return (x0, y0, x0 + w, y0 + h)
    side = min(width, height)
    return ((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)


def _centre_box(width: int, height: int, fraction: float) -> tuple[float, float, float, float]:
    side = min(width, height) * fraction
    return ((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)


@dataclass(frozen=True)
class Transform:
    resolution: int
    channels: int
    train: bool
    policy: str = "paper"  # paper | light | off (off: the evaluation crop in training too)
    photometric: bool = False
    centre: float = EVAL_CROP  # the evaluation crop's share of the shorter side (the cache: 1)

    def __call__(self, image: Image.Image, seed: int) -> np.ndarray:
        """`image` cropped and resized to resolution x resolution x channels (uint8)."""
        rng = np.random.default_rng(seed)
        width, height = image.size
        if self.train and self.policy != "off":
            box = _crop_box(width, height, rng, SCALES[self.policy])
        else:
            box = _centre_box(width, height, self.centre)
        r = self.resolution
        if image.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale when the crop allows
            wanted = (
                max(1, math.ceil(width * r / (box[2] - box[0]))),
                max(1, math.ceil(height * r / (box[3] - box[1]))),
            )
            image.draft("RGB" if self.channels == 3 else "L", wanted)
            sx, sy = image.size[0] / width, image.size[1] / height
            box = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
        mode = "RGB" if self.channels == 3 else "L"
        if image.mode != mode:  # CMYK, palette, alpha, 16-bit grey; no copy when it already is
            image = image.convert(mode)
        image = image.resize((r, r), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0)
        if self.train and self.policy != "off":
            if rng.random() < 0.5:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if self.photometric:
                image = _photometric(image, rng)
        array = np.array(image, dtype=np.uint8)  # writable: torch.from_numpy takes it as is
        return array[..., None] if array.ndim == 2 else array  # H x W x C: channels last, as the network runs


def _photometric(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Random brightness, contrast and saturation (factors in [0.6, 1.4]) in random order: the
    paper's photometric distortions (it cites Howard 2013)."""
    enhancers = [ImageEnhance.Brightness, ImageEnhance.Contrast]
    if image.mode == "RGB":
        enhancers.append(ImageEnhance.Color)
    for index in rng.permutation(len(enhancers)):
        image = enhancers[index](image).enhance(rng.uniform(0.6, 1.4))
    return image


# -- the two sources of PIL images --------------------------------------------------------------
class FolderSplit(torch.utils.data.Dataset):
    """One split: files and labels, read from disk, or from the cache's uint8 squares. Indexed
    by (index, seed): the seed drives that sample's augmentation. Items are H x W x C uint8
    tensors: a batch of them permuted to N x C x H x W is channels_last with no copy. A file that
    cannot be decoded gives a blank image with label -1, which the trainer drops and counts."""

    def __init__(
        self,
        files: Sequence[tuple[Path, int]],
        transform: Transform,
        cache: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        # one numpy array of bytes, not a list of str: forked loader workers then share it, where
        # reference counts on a million Python strings would copy them into every worker
        self.paths = np.array([str(p).encode() for p, _ in files], dtype=np.bytes_)
        self.labels = torch.tensor([label for _, label in files], dtype=torch.long)
        self.transform = transform
        self.cache = cache  # (uint8 squares, which files could not be decoded)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int] | int) -> tuple[torch.Tensor, int]:
        index, seed = key if isinstance(key, tuple) else (key, 0)
        t = self.transform
        try:
            if self.cache is not None:
                squares, bad = self.cache
                if bad[index]:
                    raise ValueError("not decodable when the cache was built")
                square = squares[index]
                image = Image.fromarray(square[..., 0] if t.channels == 1 else square)
                array = t(image, seed)
            else:
                with Image.open(self.path(index)) as image:
                    array = t(image, seed)
        except Exception:  # truncated, corrupt or vanished: skipped, counted by the trainer
            return torch.zeros((t.resolution, t.resolution, t.channels), dtype=torch.uint8), -1
        return torch.from_numpy(np.ascontiguousarray(array)), int(self.labels[index])

    def path(self, index: int) -> str:
        return self.paths[index].decode()

    def with_transform(self, transform: Transform) -> FolderSplit:
        other = FolderSplit([], transform, self.cache)
        other.paths, other.labels = self.paths, self.labels
        return other


def normalised(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """A batch of items (N x H x W x C uint8) as the network takes it: N x C x H x W floats,
    normalised with the train split's channel `mean` and `std` (shaped 1 x C x 1 x 1)."""
    return images.permute(0, 3, 1, 2).float().div_(255.0).sub_(mean).div_(std)


class KeyedSampler(torch.utils.data.Sampler):
    """Yields the (index, seed) keys the trainer sets before each pass."""

    def __init__(self) -> None:
        self.keys: list[tuple[int, int]] = []

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


def _ignore_ctrl_c(_worker: int) -> None:
    """A loader process leaves Ctrl-C to the training process: a terminal sends SIGINT to the
    whole process group, and a loader that quit on it would fail the batch the trainer finishes
    before its polite stop (search/training/interrupt.py)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def loader(
    split: FolderSplit, sampler: KeyedSampler, *, batch_size: int, workers: int, pin_memory: bool
) -> torch.utils.data.DataLoader:
    """Worker processes that outlive each pass (persistent) and prefetch; pinned memory on CUDA."""
    return torch.utils.data.DataLoader(
        split,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=_ignore_ctrl_c,
        # its own generator for the workers' base seed: a new iterator (a resumed fit's first
        # pass) must not draw from the global stream that dropout draws from
        generator=torch.Generator().manual_seed(0),
    )


# -- the cache ----------------------------------------------------------------------------------
def _cache_key(files: Sequence[tuple[Path, int]], side: int, channels: int) -> str:
    digest = hashlib.sha256(f"{side}:{channels}".encode())
    for path, label in files:
        stat = path.stat()
        digest.update(f"{path}:{label}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def build_cache(
    files: Sequence[tuple[Path, int]], *, root: Path, resolution: int, channels: int, workers: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every image decoded once: the shorter side resized to resolution x 8/7 and the centre
    square kept, as uint8 N x S x S x C, in `<root>/.inception-cache/` (memory-mapped; in memory
    where the folder cannot be written). Returns the array and which files could not be decoded
    (kept as blank squares that training and evaluation skip)."""

    side = math.ceil(resolution * CACHE_MARGIN)
    path = root / ".inception-cache" / f"{_cache_key(files, side, channels)}-{side}px-{channels}ch.npy"
    bad_path = path.with_suffix(".bad.npy")
    if path.is_file() and bad_path.is_file():
        return np.load(path, mmap_mode="r"), np.load(bad_path)
    squares = FolderSplit(files, Transform(side, channels, train=False, centre=1.0))  # the whole shorter side
    array = np.zeros((len(files), side, side, channels), dtype=np.uint8)
    bad = np.zeros(len(files), dtype=bool)
    decode = torch.utils.data.DataLoader(squares, batch_size=64, num_workers=workers, worker_init_fn=_ignore_ctrl_c)
    start = 0
    for images, labels in decode:
        array[start : start + len(labels)] = images.numpy()
        bad[start : start + len(labels)] = (labels < 0).numpy()
        start += len(labels)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, array)
        np.save(bad_path, bad)
        tmp.replace(path)
        log.info("data cache: %d images at %dx%d in %s", len(files), side, side, path)
        return np.load(path, mmap_mode="r"), bad
    except OSError as err:
        log.warning(
            "data cache: %s cannot be written (%s); kept in memory for this run", path.parent, err.strerror or err
        )
        return array, bad


# -- the splits ---------------------------------------------------------------------------------
def channel_stats(split: FolderSplit, n: int = 512) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Channel mean and std over up to `n` evenly spread images (evaluation crop), in [0, 1]."""
    step = max(1, len(split) // n)
    arrays = [split[(i, 0)] for i in range(0, len(split), step)][:n]
    stack = torch.stack([x for x, label in arrays if label >= 0]).float() / 255.0  # N x H x W x C
    mean = stack.mean(dim=(0, 1, 2))
    std = stack.std(dim=(0, 1, 2)).clamp_min(1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())
