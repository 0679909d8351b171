"""Latency of a genotype on this machine: measured, cached, and predicted without building it.

Multiply-adds are what the paper budgeted; time is what a deployed network costs, and the two
disagree (at equal MACs, a network of many thin modules waits on per-layer overheads that a
MACs count cannot see). Three parts:

- `measure`: the network in eval mode at `Setting.batch`, `Setting.threads` CPU threads (pinned
  for the measurement and recorded), after warm-up, the median of repeats; on CUDA timed with
  events after a synchronisation.
- `LatencyCache`: a JSON file of measured figures keyed by (genotype key, hardware, batch,
  threads, dtype, memory format), so nothing is measured twice.
- `LatencyTable`: a per-block lookup table (stem, stage pools, each Inception module shape,
  head), as FBNet and nn-Meter do, fitted once per machine by measuring the blocks of sampled
  genotypes one at a time. A block seen in the table is looked up; any other is predicted from
  per-layer-kind costs (a fixed cost per layer, one per MAC and one per output element, fitted
  to the measured blocks by non-negative least squares). A few whole networks calibrate what
  blocks measured alone miss. Predicting a genotype walks its layer list: microseconds.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from space import layers as L
from space.genotype import Genotype
from space.io import atomic_path
from space.model import Inception, build_layer, build_model

__all__ = [
    "LatencyCache",
    "LatencyTable",
    "Setting",
    "fit_table",
    "hardware",
    "measure",
    "measure_many",
    "network_blocks",
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Setting:
    """How latency is measured; every cached or predicted figure is for one setting."""

    device: str = "cpu"
    batch: int = 1
    threads: int = 1  # CPU threads during the measurement (torch's intra-op pool)
    dtype: str = "float32"
    channels_last: bool = True  # the trainer's memory format (search/training/trainer.py)

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError(f"latency batch={self.batch!r}: must be >= 1")
        if self.threads < 1:
            raise ValueError(f"latency threads={self.threads!r}: must be >= 1")
        if self.dtype not in DTYPES:
            raise ValueError(f"latency dtype={self.dtype!r}: one of {', '.join(DTYPES)}")


@functools.cache
def hardware(device: str) -> str:
    """What a figure was measured on: the CPU model and core count, or the GPU's name, and
    torch's version (kernels change between releases)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    else:
        name = f"{_cpu_model()} x{os.cpu_count()}"
    return f"{dev.type}:{name} torch {torch.__version__.split('+')[0]}"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


@contextlib.contextmanager
def _pinned_threads(threads: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.inference_mode()
def _time(module: nn.Module, x: torch.Tensor, device: torch.device, repeats: int, warmup: int) -> float:
    """Median milliseconds of `module(x)` after `warmup` calls."""
    for _ in range(warmup):
        module(x)
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            module(x)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    else:
        for _ in range(repeats):
            begin = time.perf_counter()
            module(x)
            times.append((time.perf_counter() - begin) * 1e3)
    return statistics.median(times)


def _prepared(
    module: nn.Module, shape: tuple[int, ...], setting: Setting
) -> tuple[nn.Module, torch.Tensor, torch.device]:
    device = torch.device(setting.device)
    dtype = DTYPES[setting.dtype]
    module = module.to(device=device, dtype=dtype).eval()
    x = torch.randn(setting.batch, *shape, device=device, dtype=dtype)
    if setting.channels_last and x.dim() == 4:
        module = module.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return module, x, device


def measure_module(
    module: nn.Module, shape: tuple[int, ...], setting: Setting, *, repeats: int = 30, warmup: int = 5
) -> float:
    """Median latency (ms) of `module` on inputs of `shape` (without the batch) in `setting`."""
    module, x, device = _prepared(module, shape, setting)
    with _pinned_threads(setting.threads):
        return _time(module, x, device, repeats, warmup)


def measure_many(
    items: list[tuple[nn.Module, tuple[int, ...]]],
    setting: Setting,
    *,
    rounds: int = 3,
    repeats: int = 10,
    warmup: int = 3,
) -> list[float]:
    """Median latency (ms) of each (module, input shape), measured in `rounds` interleaved passes
    over all of them: a slow spell of the machine then touches every item a little rather than
    some items a lot, which keeps their ranking (the median of the passes' medians)."""
    prepared = [_prepared(module, shape, setting) for module, shape in items]
    passes: list[list[float]] = [[] for _ in items]
    with _pinned_threads(setting.threads):
        for _ in range(rounds):
            for i, (module, x, device) in enumerate(prepared):
                passes[i].append(_time(module, x, device, repeats, warmup))
    return [statistics.median(p) for p in passes]


def measure(genotype: Genotype, setting: Setting, *, repeats: int = 30, warmup: int = 5) -> float:
    """Median inference latency (ms) of the whole network (aux heads are not run at inference)."""
    torch.manual_seed(0)
    return measure_module(build_model(genotype), _input_shape(genotype), setting, repeats=repeats, warmup=warmup)


def _input_shape(g: Genotype) -> tuple[int, int, int]:
    return g.in_channels, g.resolution, g.resolution


class LatencyCache:
    """Measured latencies in a JSON file, keyed by genotype and setting: measured once each.
    Writes are atomic; a file that cannot be read starts an empty cache with a warning."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries = self._read()

    def _read(self) -> dict[str, float]:
        if not self.path.is_file():
            return {}
        try:
            return {k: float(v) for k, v in json.loads(self.path.read_text()).items()}
        except (OSError, ValueError, AttributeError, TypeError):
            import logging

            logging.getLogger(__name__).warning("latency cache %s is unreadable: measuring afresh", self.path)
            return {}

    @staticmethod
    def key(genotype: Genotype, setting: Setting) -> str:
        s = setting
        layout = "channels_last" if s.channels_last else "contiguous"
        return f"{genotype.key}|{hardware(s.device)}|batch {s.batch}|threads {s.threads}|{s.dtype}|{layout}"

    def get(self, genotype: Genotype, setting: Setting) -> float | None:
        return self._entries.get(self.key(genotype, setting))

    def measure(self, genotype: Genotype, setting: Setting, *, repeats: int = 30, warmup: int = 5) -> float:
        """The cached figure, or a new measurement, stored."""
        found = self.get(genotype, setting)
        if found is not None:
            return found
        value = measure(genotype, setting, repeats=repeats, warmup=warmup)
        self._entries = {
            **self._read(),
            **self._entries,
            self.key(genotype, setting): value,
        }  # other workers' entries stay
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(self._entries, indent=1, sort_keys=True))
        return value

    def __len__(self) -> int:
        return len(self._entries)


# -- blocks and their features -------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """One block of a network at inference, as measured alone: its layers, input shape, and
    `signature` (the table's key: equal blocks share it)."""

    kind: str  # stem | pool | inception | head
    spec: Any  # the layers: a tuple of layers, L.Pool, L.InceptionLayers or L.HeadLayers
    shape: tuple[int, int, int]  # channels, height, width of its input

    @property
    def signature(self) -> str:
        return f"{self.kind}{self.shape}{self.spec!r}"

    def module(self) -> nn.Module:
        if self.kind == "inception":
            return Inception(self.spec)
        if self.kind == "head":
            return nn.Sequential(build_layer(self.spec.pool), nn.Flatten(), build_layer(self.spec.fc))
        if self.kind == "pool":
            return build_layer(self.spec)
        return nn.Sequential(*map(build_layer, self.spec))

    def features(self) -> dict[str, float]:
        """Per image: per layer kind, the layer count, MACs and output elements; concat and pools
        by elements. The table's per-kind costs multiply these."""
        out: dict[str, float] = {}
        channels, size = self.shape[0], self.shape[1]
        if self.kind == "inception":  # four branches from the module input, concatenated
            branches = ((self.spec.branch1,), self.spec.branch3, self.spec.branch5, self.spec.branch_pool)
            width = sum(_walk(branch, channels, size, out)[0] for branch in branches)
            _add(out, "concat", 1, 0, width * size * size)
        elif self.kind == "head":
            _add(out, "avgpool", 1, 0, channels * size * size)
            _add(out, "linear", 1, self.spec.fc.c_in * self.spec.fc.c_out, self.spec.fc.c_out)
        else:
            _walk(self.spec if self.kind == "stem" else (self.spec,), channels, size, out)
        return out


def _add(out: dict[str, float], kind: str, n: float, macs: float, elements: float) -> None:
    out[f"{kind}:n"] = out.get(f"{kind}:n", 0) + n
    if macs:
        out[f"{kind}:macs"] = out.get(f"{kind}:macs", 0) + macs
    out[f"{kind}:elements"] = out.get(f"{kind}:elements", 0) + elements


def _conv_kind(conv: L.Conv) -> str:
    if conv.groups > 1:
        return "conv_depthwise"
    return f"conv{conv.kernel}x{conv.kernel}" if conv.kernel in (1, 3, 5) else "conv_large"


def _walk(seq: Iterable[L.Layer], channels: int, size: int, out: dict[str, float]) -> tuple[int, int]:
    """Add the features of a sequence of layers entered with `channels` x `size` x `size`."""
    for layer in seq:
        if isinstance(layer, L.Conv):
            elements = layer.c_out * layer.size * layer.size
            macs = layer.kernel * layer.kernel * layer.c_in // layer.groups * elements
            _add(out, _conv_kind(layer), 1, macs, elements)
            channels, size = layer.c_out, layer.size
        elif isinstance(layer, L.Pool) and layer.pool is not None:
            _add(out, "maxpool", 1, 0, channels * size * size)
            size = layer.pool.out_size(size)
    return channels, size


def network_blocks(g: Genotype) -> list[Block]:
    """The blocks a network runs at inference, in order: stem, each stage's pool (where it has
    one) and modules, head."""
    spec = L.network_layers(g)
    first, _, stem_out = g.stem_sizes()
    blocks = [Block("stem", spec["stem"], (g.in_channels, g.resolution, g.resolution))]
    size, channels = stem_out, g.stem.conv3
    names = iter(name for name, _ in g.named_modules())
    for stage in g.stages:
        if stage.pool is not None:
            blocks.append(Block("pool", L.Pool(stage.pool), (channels, size, size)))
            size = stage.pool.out_size(size)
        for _ in stage.modules:
            name = next(names)
            blocks.append(Block("inception", spec[name], (channels, size, size)))
            channels = g.shapes[name].out_channels
    blocks.append(Block("head", spec["head"], (channels, size, size)))
    return blocks


# -- the table -----------------------------------------------------------------------------------
@dataclass
class LatencyTable:
    """Measured blocks, per-feature costs (ms per unit at this batch) and the whole-network
    calibration `scale * sum(blocks) + per_block * n_blocks + offset`, for one setting on one machine."""

    setting: Setting
    hardware: str
    blocks: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    scale: float = 1.0
    per_block: float = 0.0
    offset: float = 0.0

    def block_ms(self, block: Block) -> float:
        found = self.blocks.get(block.signature)
        if found is not None:
            return found
        batch = self.setting.batch
        return sum(self.costs.get(k, 0.0) * (v if k.endswith(":n") else v * batch) for k, v in block.features().items())

    def predict(self, genotype: Genotype) -> float:
        """Predicted inference latency (ms) of `genotype` in this table's setting, unbuilt."""
        blocks = network_blocks(genotype)
        return self.scale * sum(map(self.block_ms, blocks)) + self.per_block * len(blocks) + self.offset

    def check(self, setting: Setting, path: Path | str = "") -> None:
        """A ValueError (one line) when this table was fitted for another machine or setting."""
        here = hardware(setting.device)
        if self.hardware != here:
            raise ValueError(
                f"latency table {path}: fitted on {self.hardware!r}, not on this {here!r}; "
                "fit one here (delete the file)"
            )
        if self.setting != setting:
            raise ValueError(
                f"latency table {path}: fitted for {asdict(self.setting)}, not {asdict(setting)}; "
                "fit one for this setting"
            )

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "setting": asdict(self.setting),
            "hardware": self.hardware,
            "scale": self.scale,
            "per_block": self.per_block,
            "offset": self.offset,
            "costs": self.costs,
            "blocks": self.blocks,
        }
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: Path) -> LatencyTable:
        try:
            data = json.loads(path.read_text())
            return cls(
                setting=Setting(**data["setting"]),
                hardware=str(data["hardware"]),
                blocks=dict(data["blocks"]),
                costs=dict(data["costs"]),
                scale=float(data["scale"]),
                per_block=float(data["per_block"]),
                offset=float(data["offset"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"latency table {path}: not a table this version reads ({err.__class__.__name__}: {err})"
            ) from None


def _weighted_nnls(rows: list[dict[str, float]], targets: list[float], names: list[str]) -> dict[str, float]:
    """Non-negative costs minimising the relative squared error of the rows' sums."""
    import numpy as np
    from scipy.optimize import nnls

    a = np.array([[r.get(n, 0.0) for n in names] for r in rows], dtype=float)
    y = np.array(targets, dtype=float)
    w = 1.0 / np.maximum(y, 1e-6)
    scales = np.maximum(np.abs(a).max(axis=0), 1e-12)  # columns of similar size: a better-conditioned solve
    solution, _ = nnls(a / scales * w[:, None], y * w, maxiter=50 * len(names))
    return {n: float(c / s) for n, c, s in zip(names, solution, scales)}


def fit_table(
    genotypes: list[Genotype], setting: Setting, *, calibrate: int = 12, repeats: int = 20, warmup: int = 5
) -> LatencyTable:
    """Measure every distinct block of `genotypes` alone, fit the per-kind costs to them, then
    calibrate on the first `calibrate` whole networks."""
    blocks: dict[str, Block] = {}
    for g in genotypes:
        for block in network_blocks(g):
            blocks.setdefault(block.signature, block)
    torch.manual_seed(0)
    times = measure_many(
        [(b.module(), b.shape) for b in blocks.values()], setting, repeats=max(1, repeats // 3), warmup=warmup
    )
    measured = dict(zip(blocks, times))
    batch = setting.batch
    rows = [{k: (v if k.endswith(":n") else v * batch) for k, v in b.features().items()} for b in blocks.values()]
    names = sorted({k for r in rows for k in r})
    table = LatencyTable(
        setting=setting,
        hardware=hardware(setting.device),
        blocks=measured,
        costs=_weighted_nnls(rows, [measured[s] for s in blocks], names),
    )
    whole = genotypes[: max(0, calibrate)]
    if len(whole) >= 3:
        import numpy as np

        sums = [sum(table.block_ms(b) for b in network_blocks(g)) for g in whole]
        counts = [len(network_blocks(g)) for g in whole]
        y = np.array(
            measure_many(
                [(build_model(g), _input_shape(g)) for g in whole], setting, repeats=max(1, repeats // 3), warmup=warmup
            )
        )
        from scipy.optimize import nnls

        # Relative error, and no negative term: a scale, a per-block overhead and an offset below
        # zero fit noise (a busy machine during the fit) and would predict negative latencies
        # for networks outside the calibration set.
        a = np.column_stack([sums, counts, np.ones(len(whole))]) / y[:, None]
        solution, _ = nnls(a, np.ones(len(whole)))
        table.scale, table.per_block, table.offset = (float(v) for v in solution)
    return table


def kendall_tau(a: list[float], b: list[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


def median_ape(predicted: list[float], measured: list[float]) -> float:
    """Median absolute percentage error, in percent."""
    return statistics.median(abs(p - m) / m * 100 for p, m in zip(predicted, measured) if m > 0 and math.isfinite(p))
