"""Class-per-folder data on small trees made with Pillow: scanning, conversion of every image
mode, seeded augmentation independent of the worker count, the cache, undecodable files
skipped and counted, bad trees refused in one line, and a search (and its resume) on a tree."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from search.apps.search import main as search_main
from search.config.schema import ConfigError, TrainConfig
from search.data.folder import KeyedSampler, Transform, loader, scan
from search.data.sources import data_config, load_data
from search.data.splits import minibatch
from search.training.trainer import Trainer
from space.model import build_model
from space.presets import preset
from tests.search.conftest import run_cli_in_process, run_search_in_process

CLASSES = ["ant", "bee", "cat"]
MODES = ["RGB", "L", "P", "RGBA", "CMYK", "I;16", "LA"]


def _image(label: int, rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    base = np.zeros((size[1], size[0], 3), np.float32)
    base[..., label] = 200
    return Image.fromarray(np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8))


def make_tree(root: Path, per_class: int = 12, *, val: int = 0, corrupt: bool = True) -> Path:
    """Mixed modes and formats, extensions in any case, a nested folder, a non-image file."""
    rng = np.random.default_rng(0)
    for part, n in (("train", per_class), ("val", val)):
        for label, name in enumerate(CLASSES):
            if not n:
                continue
            folder = root / part / name
            (folder / "nested").mkdir(parents=True, exist_ok=True)
            for i in range(n):
                mode = MODES[i % len(MODES)]
                image = _image(label, rng, (40 + 4 * i, 30 + 2 * i))
                image = (
                    image.convert(mode)
                    if mode != "I;16"
                    else Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 256)
                )
                suffix = {"CMYK": ".JPEG", "RGB": ".jpg"}.get(mode, ".png" if i % 2 else ".PNG")
                image.save((folder / "nested" if i == 1 else folder) / f"{i:03d}{suffix}")
    if corrupt:
        (root / "train" / "ant" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "train" / "bee" / "README.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("tree"))


def test_scan_finds_classes_and_images_and_ignores_other_files(tree: Path) -> None:
    found = scan(tree)
    assert found.classes == tuple(CLASSES) and found.val is None
    assert len(found.train) == 3 * 12 + 1  # the broken file looks like an image until decoded
    assert not any(p.suffix == ".txt" for p, _ in found.train)
    assert any(p.parent.name == "nested" for p, _ in found.train)
    assert [label for _, label in found.train].count(0) == 13


@pytest.mark.parametrize("channels", [1, 3])
def test_every_image_mode_becomes_the_configured_channels(tree: Path, channels: int) -> None:
    t = Transform(24, channels, train=True)
    for path, _ in scan(tree).train:
        if path.name == "broken.jpg":
            continue
        with Image.open(path) as image:
            array = t(image, seed=3)
        assert array.shape == (24, 24, channels) and array.dtype == np.uint8


def test_augmentation_is_seeded_and_evaluation_is_the_centre_crop(tree: Path) -> None:
    path = next(p for p, _ in scan(tree).train if p.suffix == ".jpg")
    train, evaluate = Transform(16, 3, train=True), Transform(16, 3, train=False)

    def run(t: Transform, seed: int) -> np.ndarray:
        with Image.open(path) as image:
            return t(image, seed)

    assert np.array_equal(run(train, 1), run(train, 1))
    assert not all(np.array_equal(run(train, 1), run(train, s)) for s in range(2, 6))
    assert np.array_equal(run(evaluate, 1), run(evaluate, 2))  # no randomness at evaluation


def test_batches_do_not_depend_on_the_number_of_workers(tree: Path) -> None:
    data = load_data(data_config("folder", path=str(tree), resolution=16, workers=0))
    keys = [(i, 1000 + i) for i in range(len(data.train))]
    batches = []
    for workers in (0, 2):
        sampler = KeyedSampler()
        sampler.keys = keys
        batches.append([x for x, _ in loader(data.train, sampler, batch_size=8, workers=workers, pin_memory=False)])
    assert all(torch.equal(a, b) for a, b in zip(*batches))


def test_undecodable_images_are_skipped_and_counted(tree: Path) -> None:
    data = load_data(
        data_config("folder", path=str(tree), resolution=16, workers=1, val_fraction=0.25, test_fraction=0.25)
    )
    broken = sum(1 for i in range(len(data.train)) if data.train.path(i).endswith("broken.jpg"))
    trainer = Trainer(TrainConfig(epochs=2, batch_size=8, polyak=None), data)
    genotype = preset(
        "googlenet-small", resolution=16, in_channels=3, num_classes=3, aux={"head": {"pool": "adaptive", "size": 2}}
    )
    history, _ = trainer.fit(build_model(genotype), aux_weight=0.3)
    assert [r.skipped_images for r in history] == [broken, broken]  # once per pass over train
    assert history[0].metrics().get("data/skipped_images", 0) == broken
    x, y = minibatch(data, "train", torch.arange(len(data.train)))  # the prescreen's minibatch
    assert len(y) == len(data.train) - broken and x.shape[1:] == (3, 16, 16)
    assert abs(float(x.mean())) < 0.5  # normalised with the train split's statistics


def test_the_cache_is_built_once_beside_the_data_and_gives_the_same_labels(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree", per_class=6)
    cfg = data_config("folder", path=str(root), resolution=16, cache=True, workers=0)
    first = load_data(cfg)
    files = sorted((root / ".inception-cache").glob("*.npy"))
    assert files, "no cache file beside the data"
    stamps = [p.stat().st_mtime_ns for p in files]
    again = load_data(cfg)
    assert [p.stat().st_mtime_ns for p in sorted((root / ".inception-cache").glob("*.npy"))] == stamps
    assert torch.equal(first.train.labels, again.train.labels)
    streamed = load_data(data_config("folder", path=str(root), resolution=16, workers=0))
    index = torch.arange(len(streamed.val))
    x_cached, y_cached = minibatch(first, "val", index)
    x_streamed, y_streamed = minibatch(streamed, "val", index)
    assert torch.equal(y_cached, y_streamed)
    assert float((x_cached - x_streamed).abs().mean()) < 0.25  # one more resize on the way: close


def _refused(tmp_path: Path, root: Path, message: str) -> None:
    cwd = tmp_path / "run"
    cwd.mkdir(exist_ok=True)
    proc = run_cli_in_process(search_main, ["data=folder", f"data.path={root}", "logger=none"], cwd)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: data.path='{root}'") and message in line, line
    assert not (cwd / "results").exists()  # nothing written


def test_bad_trees_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    _image(0, np.random.default_rng(0), (8, 8)).save(flat / "a.png")
    _refused(tmp_path, flat, "not a class-per-folder tree")
    empty = make_tree(tmp_path / "empty", per_class=2, corrupt=False)
    (empty / "train" / "dog").mkdir()
    _refused(tmp_path, empty, "class folder train/dog holds no image")
    differ = make_tree(tmp_path / "differ", per_class=2, val=1, corrupt=False)
    (differ / "val" / "cat").rename(differ / "val" / "cow")
    _refused(tmp_path, differ, "train/ and val/ have different classes (only in train: cat; only in val: cow)")
    unreadable = tmp_path / "unreadable"
    for name in CLASSES:
        (unreadable / "train" / name).mkdir(parents=True)
        (unreadable / "train" / name / "x.jpg").write_bytes(b"junk")
    _refused(tmp_path, unreadable, "no readable image")


def test_a_val_folder_is_the_test_split(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "tree", per_class=6, val=2, corrupt=False)
    data = load_data(data_config("folder", path=str(root), resolution=16, workers=0))
    assert len(data.test) == 6 and len(data.train) + len(data.val) == 18
    assert data.class_names == tuple(CLASSES)


@pytest.mark.slow
def test_search_on_a_tree_and_its_resume(tree: Path, tmp_path: Path) -> None:
    args = [
        "data=folder",
        f"data.path={tree}",
        "data.resolution=16",
        "data.workers=0",  # streamed in the training process (loader processes: test_batches_do_not_depend_...)
        "budget.macs=3000000",
        "budget.mode=project",  # every draw scaled into the budget: no over-budget draws to wade through
        "train.epochs=1",
        "logger=none",
        "study.name=tree",
        "progress=false",
    ]
    run_search_in_process([*args, "search.n_trials=2"], tmp_path)
    again = run_search_in_process([*args, "search.n_trials=3"], tmp_path)
    import optuna

    study = optuna.load_study(study_name="tree", storage=f"sqlite:///{tmp_path / 'results' / 'tree' / 'study.db'}")
    trained = [t for t in study.trials if t.user_attrs.get("status") in ("complete", "pruned")]
    assert len(trained) == 3 and "best trial" in again.stdout  # the resumed run trained one more
    assert all(t.user_attrs.get("skipped_images", 0) > 0 for t in trained)  # the broken file, counted
    log = (tmp_path / "results" / "tree" / "search.log").read_text()
    assert "undecodable image(s) skipped" in log
    from search.training.predict import load_trained

    trained_model = load_trained(tmp_path / "results" / "tree")
    assert trained_model.class_names == tuple(CLASSES) and trained_model.input_shape == (3, 16, 16)
    assert study.user_attrs["class_names"] == CLASSES


def _cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", 60), ("test", 20)):
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"fine_labels": rng.integers(0, 100, n).tolist(),
            b"coarse_labels": rng.integers(0, 20, n).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {
        b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
        b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
    }
    (folder / "meta").write_bytes(pickle.dumps(meta))
    return root


def test_cifar100_fine_and_coarse_labels(tmp_path: Path) -> None:
    root = _cifar100(tmp_path / "c100")
    fine = load_data(data_config("cifar100", path=str(root)))
    coarse = load_data(data_config("cifar100", path=str(root), labels="coarse"))
    assert len(fine.test) == len(coarse.test) == 20  # its own test file
    assert fine.channels == 3 and fine.resolution == 32
    assert int(fine.train.labels.max()) < 100 and int(coarse.train.labels.max()) < 20
    assert fine.class_names[:2] == ("fine0", "fine1") and coarse.class_names[0] == "coarse0"
    with pytest.raises(ConfigError, match="not a CIFAR-100 python folder"):
        load_data(data_config("cifar100", path=str(tmp_path)))


def test_a_streamed_fit_resumed_from_a_checkpoint_ends_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    """The loader's (index, seed) keys come from the fit's generator, which the checkpoint
    carries: augmentation and order after a resume are what they would have been."""
    root = make_tree(tmp_path / "tree", per_class=8, corrupt=False)
    data = load_data(data_config("folder", path=str(root), resolution=16, workers=1, photometric=True))
    cfg = TrainConfig(epochs=3, batch_size=8)
    genotype = preset(
        "googlenet-small", resolution=16, in_channels=3, num_classes=3, aux={"head": {"pool": "adaptive", "size": 2}}
    )

    def fit(**kwargs):
        torch.manual_seed(0)
        return Trainer(cfg, data).fit(build_model(genotype), aux_weight=0.3, **kwargs)

    full, full_model = fit(on_checkpoint=lambda state: torch.save(state, tmp_path / f"epoch-{state['epoch']}.pt"))
    resumed, resumed_model = fit(resume=torch.load(tmp_path / "epoch-1.pt", weights_only=True))
    assert [r.train_loss for r in resumed] == [r.train_loss for r in full]
    for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_trials_own_settings_rebuild_a_streamed_loader_only_when_they_change_it(tree: Path) -> None:
    cfg = data_config("folder", path=str(tree), resolution=16, workers=0, val_fraction=0.25, test_fraction=0.25)
    data = load_data(cfg)
    trainer = Trainer(TrainConfig(epochs=1, batch_size=8), data)
    same = trainer.configured(TrainConfig(epochs=3, batch_size=8, lr=0.2), cfg)
    assert (
        same._splits == trainer._splits and same.cfg.lr == 0.2 and trainer.cfg.lr == 0.05
    )  # nothing rebuilt or changed
    bigger = trainer.configured(TrainConfig(epochs=1, batch_size=16), cfg)
    assert bigger._splits["train"] is not trainer._splits["train"] and bigger._splits["train"].loader.batch_size == 16
    assert bigger._splits["val"] is trainer._splits["val"]  # evaluation is the study's
    plain = trainer.configured(TrainConfig(epochs=1, batch_size=8), dataclasses.replace(cfg, augment=False))
    assert (
        plain._splits["train"].split.transform.policy == "off"
        and trainer._splits["train"].split.transform.policy == "paper"
    )
    assert plain._splits["train"] is not trainer._splits["train"] and same.augment and not plain.augment
