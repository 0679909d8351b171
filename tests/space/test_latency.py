"""Latency: measurement pins threads and restores them, the cache measures each genotype once,
the table's blocks are the network's, its prediction is the sum it says it is, and a table of
another machine or setting is refused."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

import space.latency as latency
from space.genotype import Genotype
from space.latency import LatencyCache, LatencyTable, Setting, fit_table, hardware, measure, network_blocks
from space.model import build_model
from space.presets import preset
from space.ranges import RandomDraw, Ranges, sample

SMALL = {"resolution": 16, "in_channels": 1, "num_classes": 4, "aux": {"head": {"pool": "adaptive", "size": 2}}}


def _genotype(seed: int = 0) -> Genotype:
    return sample(
        RandomDraw(seed), Ranges(modules_per_stage=((1, 1), (1, 2), (1, 1))), preset("googlenet-small", **SMALL)
    )


def test_measure_pins_threads_and_restores_them() -> None:
    before = torch.get_num_threads()
    seen = []
    real = latency._time

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    latency._time = spy
    try:
        ms = measure(_genotype(), Setting(threads=1), repeats=3, warmup=1)
    finally:
        latency._time = real
    assert seen == [1] and torch.get_num_threads() == before and ms > 0 and math.isfinite(ms)


def test_the_cache_measures_each_genotype_and_setting_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(latency, "measure", lambda g, s, **kw: calls.append((g.key, s.batch)) or 1.5 * s.batch)
    path = tmp_path / "cache" / "measured.json"
    cache = LatencyCache(path)
    g, other = _genotype(0), _genotype(1)
    assert cache.measure(g, Setting()) == 1.5 and cache.measure(g, Setting()) == 1.5
    assert cache.measure(g, Setting(batch=4)) == 6.0 and cache.measure(other, Setting()) == 1.5
    assert calls == [(g.key, 1), (g.key, 4), (other.key, 1)]
    reopened = LatencyCache(path)  # from the file: nothing measured again
    assert reopened.measure(g, Setting(batch=4)) == 6.0 and len(calls) == 3 and len(reopened) == 3
    key = LatencyCache.key(g, Setting(batch=4))
    assert (
        key.startswith(g.key)
        and hardware("cpu") in key
        and "batch 4" in key
        and "threads 1" in key
        and "float32" in key
    )
    path.write_text("{not json")
    assert len(LatencyCache(path)) == 0  # an unreadable cache starts afresh, with a warning


def test_network_blocks_are_the_layers_the_model_runs() -> None:
    g = _genotype()
    blocks = network_blocks(g)
    kinds = [b.kind for b in blocks]
    assert kinds[0] == "stem" and kinds[-1] == "head" and kinds.count("inception") == len(g.named_modules())
    assert kinds.count("pool") == sum(stage.pool is not None for stage in g.stages)
    x = torch.randn(2, *blocks[0].shape)
    with torch.no_grad():
        for block in blocks:  # the blocks alone, chained: each gets the input shape it was measured at
            assert tuple(x.shape[1:]) == block.shape, block.kind
            x = block.module().eval()(x)
    assert x.shape == (2, g.num_classes) == build_model(g).eval()(torch.randn(2, *blocks[0].shape)).shape
    macs = sum(v for b in blocks for k, v in b.features().items() if k.endswith(":macs"))
    from space.accounting import cost

    assert macs == cost(g).macs  # the features count exactly the analytic MACs


def test_prediction_is_table_lookups_plus_per_kind_costs_and_calibration() -> None:
    g = _genotype()
    blocks = network_blocks(g)
    table = LatencyTable(
        setting=Setting(batch=2),
        hardware=hardware("cpu"),
        costs={"conv1x1:n": 0.01, "conv3x3:macs": 1e-6, "maxpool:elements": 1e-5},
        scale=1.5,
        per_block=0.02,
        offset=0.1,
    )
    table.blocks[blocks[0].signature] = 0.7  # the stem is in the table: looked up
    by_kind = 0.0
    for b in blocks[1:]:
        f = b.features()
        by_kind += (
            0.01 * f.get("conv1x1:n", 0) + 1e-6 * 2 * f.get("conv3x3:macs", 0) + 1e-5 * 2 * f.get("maxpool:elements", 0)
        )
    assert table.predict(g) == pytest.approx(1.5 * (0.7 + by_kind) + 0.02 * len(blocks) + 0.1)


def test_a_fitted_table_is_saved_checked_and_refused_elsewhere(tmp_path: Path) -> None:
    genotypes = [_genotype(seed) for seed in range(4)]
    table = fit_table(genotypes, Setting(), calibrate=3, repeats=3, warmup=1)
    assert table.blocks and table.costs and all(v >= 0 for v in table.costs.values())
    assert all(table.predict(g) > 0 for g in genotypes)
    path = table.save(tmp_path / "table.json")
    loaded = LatencyTable.load(path)
    assert loaded.predict(genotypes[0]) == pytest.approx(table.predict(genotypes[0]))
    loaded.check(Setting(), path)  # this machine, this setting: fine
    with pytest.raises(ValueError, match=r"fitted for .*'batch': 1.*not .*'batch': 8"):
        loaded.check(Setting(batch=8), path)
    data = json.loads(path.read_text())
    data["hardware"] = "cuda:NVIDIA H200 torch 2.0.0"  # never this machine: torch 2.0 predates our floor
    path.write_text(json.dumps(data))
    with pytest.raises(
        ValueError, match=re.escape(f"fitted on 'cuda:NVIDIA H200 torch 2.0.0', not on this '{hardware('cpu')}'")
    ):
        LatencyTable.load(path).check(Setting(), path)
    path.write_text("[]")
    with pytest.raises(ValueError, match="not a table this version reads"):
        LatencyTable.load(path)


def test_bad_settings_are_refused() -> None:
    for kwargs, message in [
        ({"batch": 0}, "batch=0"),
        ({"threads": 0}, "threads=0"),
        ({"dtype": "int8"}, "dtype='int8'"),
    ]:
        with pytest.raises(ValueError, match=message):
            Setting(**kwargs)
