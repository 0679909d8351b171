from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from search.config.schema import ConfigError
from search.data.sources import data_config, load_data


def test_digits_are_real_and_split_by_seed() -> None:
    d = load_data(data_config("digits"))
    assert (d.num_classes, d.channels, d.resolution) == (10, 1, 8)
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    assert len(d.test) == round(0.2 * 1797) and len(d.val) == round(0.2 * 1797)
    again = load_data(data_config("digits"))
    assert torch.equal(d.val.images, again.val.images)
    other = load_data(data_config("digits", seed=1))
    assert not torch.equal(d.val.labels, other.val.labels)
    assert abs(float(d.train.images.mean())) < 1e-4  # normalised with train statistics


def test_splits_are_disjoint() -> None:
    d = load_data(data_config("digits"))
    rows = lambda s: {tuple(x.flatten().tolist()) for x in s.images}  # noqa: E731
    assert not rows(d.test) & rows(d.val)


def test_resolution_resizes() -> None:
    d = load_data(data_config("digits", resolution=16))
    assert d.train.images.shape[1:] == (1, 16, 16) and d.resolution == 16


def _cifar_folder(root: Path, n: int = 20) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, n)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    return root


def test_cifar10_standard_folder(tmp_path: Path) -> None:
    d = load_data(data_config("cifar10", path=str(_cifar_folder(tmp_path)), val_fraction=0.1))
    assert d.channels == 3 and d.resolution == 32
    assert len(d.test) == 20 and len(d.train) + len(d.val) == 100  # the official test batch is the test split


def test_cifar10_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such folder"):
        load_data(data_config("cifar10", path=str(tmp_path / "nope")))
    root = _cifar_folder(tmp_path)
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(ConfigError, match="missing data_batch_3"):
        load_data(data_config("cifar10", path=str(root)))


def test_cifar10_batches_cannot_run_code(tmp_path: Path) -> None:
    root = _cifar_folder(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(ConfigError, match="forbidden global builtins.print"):
        load_data(data_config("cifar10", path=str(root)))


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW"])
def test_npz_layouts(tmp_path: Path, layout: str) -> None:
    shape = {"NHW": (50, 12, 12), "NHWC": (50, 12, 12, 3), "NCHW": (50, 3, 12, 12)}[layout]
    images = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    np.savez(tmp_path / "d.npz", images=images, labels=np.arange(50) % 5)
    d = load_data(data_config("npz", path=str(tmp_path / "d.npz")))
    assert d.resolution == 12 and d.num_classes == 5 and d.channels == (1 if layout == "NHW" else 3)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"pictures": np.zeros((20, 8, 8))}, "needs arrays 'images' and 'labels' (has pictures)"),
        ({"images": np.zeros((20, 8, 6)), "labels": np.zeros(20, int)}, "not N x C x S x S"),
        ({"images": np.zeros((20, 8, 8)), "labels": np.zeros(19, int)}, "labels must be 20 integers"),
        ({"images": np.zeros((20, 8, 8)), "labels": np.full(20, 0.5)}, "labels must be 20 integers"),
        ({"images": np.zeros((5, 8, 8)), "labels": np.zeros(5, int)}, "only 5 images"),
    ],
)
def test_npz_errors(tmp_path: Path, arrays: dict, message: str) -> None:
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(ConfigError) as err:
        load_data(data_config("npz", path=str(tmp_path / "d.npz")))
    assert message in str(err.value) and "\n" not in str(err.value)


RAMP = """
from dataclasses import dataclass

import numpy as np

from search.config.schema import DataConfig, fail
from search.data.source import ArraySource


@dataclass
class RampData(DataConfig):
    name: str = "ramp"
    test_fraction: float = 0.2
    n_samples: int = 60

    def check(self) -> None:
        super().check()
        if self.n_samples < 20:
            fail("data.n_samples", self.n_samples, "must be >= 20")


def _read(cfg):
    labels = np.arange(cfg.n_samples) % 2
    images = np.broadcast_to(labels[:, None, None, None], (cfg.n_samples, 1, 6, 6)).astype(np.float32)
    return images, labels.astype(np.int64), None


SOURCES = (ArraySource(config=RampData, read=_read),)
"""


def test_a_new_source_is_its_module_plus_its_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a contributor writes for a new source: one module in search/data/sources/ and one
    conf/data/<name>.yaml; found, registered, composed, checked and loaded with no other edit."""
    import sys

    import search.data.sources as sources
    from search.apps.search import precheck

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "ramp.py").write_text(RAMP)
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "data" / "ramp.yaml").write_text("defaults:\n  - ramp_schema\n  - _self_\n\nname: ramp\n")
    monkeypatch.setattr(sources, "__path__", [*sources.__path__, str(tmp_path / "pkg")])
    try:
        found = {source.config.__name__: source for source in sources._found()}
    finally:
        sys.modules.pop("search.data.sources.ramp", None)  # the class lives on in `found`
    assert set(found) >= {"RampData", "DigitsData", "FolderData"}
    monkeypatch.setitem(sources.SOURCES, "ramp", found["RampData"])
    monkeypatch.setattr(sys.modules["search.apps.cli"], "SOURCES", sources.SOURCES)
    sources.register()
    cfg = precheck(["--config-dir", str(tmp_path / "conf"), "data=ramp", "data.n_samples=40"])
    assert type(cfg.data).__name__ == "RampData" and cfg.data.n_samples == 40  # type: ignore[attr-defined]
    splits = load_data(cfg.data)
    assert splits.num_classes == 2 and len(splits.train) + len(splits.val) + len(splits.test) == 40
    with pytest.raises(ConfigError, match=r"^data.n_samples=5: must be >= 20$"):
        precheck(["--config-dir", str(tmp_path / "conf"), "data=ramp", "data.n_samples=5"])
    with pytest.raises(ConfigError, match=r"data.n_sample: not a field of data=ramp .*n_samples"):
        precheck(["--config-dir", str(tmp_path / "conf"), "data=ramp", "data.n_sample=5"])


def test_every_source_has_its_yaml_and_its_class_in_its_module() -> None:
    from search.config.schema import source_name
    from search.data.sources import SOURCES

    conf = Path(__file__).parents[3] / "conf" / "data"
    assert {p.stem for p in conf.glob("*.yaml")} == set(SOURCES)
    for name, source in SOURCES.items():
        assert source_name(source.config) == name
        assert source.config.__module__.startswith("search.data.sources.")
        assert f"  - {name}_schema\n" in (conf / f"{name}.yaml").read_text()


def test_val_size_holds_validation_out_of_the_training_subset() -> None:
    """data.val_size: validation is drawn first from the whole pool, so it neither shrinks nor
    moves with the training subset and never shares an image with it."""
    from search.data.splits import split_indices

    labels = np.repeat(np.arange(4), 100)
    small = split_indices(labels, data_config("synthetic", val_size=80, subset=60), with_test=True)
    large = split_indices(labels, data_config("synthetic", val_size=80, subset=200), with_test=True)
    train, val, test = small
    assert len(val) == 80 and len(train) == 60 and len(test) == round(0.2 * 400)
    np.testing.assert_array_equal(val, large[1])  # the same validation images whatever the subset
    np.testing.assert_array_equal(test, large[2])
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert not set(large[0]) & set(val)
    assert np.bincount(labels[val]).tolist() == [20, 20, 20, 20]  # class-balanced
    assert split_indices(labels, data_config("synthetic", val_size=80), with_test=True)[0].size == 400 - 80 - 80
    with pytest.raises(
        ConfigError, match=r"^data.val_size=400: leaves no training images \(the data has 320 beside its test split\)$"
    ):
        split_indices(labels, data_config("synthetic", val_size=400), with_test=True)


def test_without_val_size_the_splits_are_as_before() -> None:
    """val_size null keeps every earlier study's splits: the subset, then val_fraction of it."""
    from search.data.splits import balanced_subset, split_indices

    labels = np.repeat(np.arange(4), 100)
    cfg = data_config("synthetic", subset=200)
    keep = balanced_subset(labels, 200, 0)
    order = np.random.default_rng(0).permutation(200)
    train, val, test = split_indices(labels, cfg, with_test=True)
    np.testing.assert_array_equal(test, keep[order[:40]])
    np.testing.assert_array_equal(val, keep[order[40:80]])
    np.testing.assert_array_equal(train, keep[order[80:]])


def test_each_epoch_but_the_last_evaluates_val_epoch_size_images() -> None:
    from search.config.schema import TrainConfig
    from search.data.splits import base_genotype
    from search.training.network import train_network
    from search.training.trainer import Trainer

    data = load_data(data_config("synthetic", n_samples=200, size=8, val_size=60))
    assert len(data.val) == 60
    trainer = Trainer(TrainConfig(epochs=3, batch_size=32), data, val_epoch_size=20)
    seen: list[int | None] = []
    evaluate = trainer.evaluate

    def spy(model, split, limit=None):  # type: ignore[no-untyped-def]
        seen.append(limit)
        return evaluate(model, split, limit)

    trainer.evaluate = spy  # type: ignore[method-assign]
    genotype = base_genotype("googlenet-small", {"aux": {"head": {"pool": "adaptive", "size": 2}}}, data)
    trained = train_network(genotype, trainer, seed=0)
    assert seen == [20, 20, None] and trained.fail_reason is None
    assert [len(list(trainer._splits["val"].eval_batches(n))) for n in (20, None)] == [1, 1]
    assert sum(len(y) for _, y in trainer._splits["val"].eval_batches(20)) == 20
