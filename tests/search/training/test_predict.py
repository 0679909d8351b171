"""Using a trained model: the weights file's model card, load-and-predict on raw images, export
to TorchScript and ONNX with the same logits, and weights kept by ablation runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from search.apps.ablate import main as ablate_main
from search.apps.export import export
from search.apps.export import main as export_main
from search.data.sources import data_config, load_data
from search.data.splits import split_indices
from search.training.predict import load_trained, weights_file
from tests.search.conftest import run_cli_in_process, run_search_in_process

CLASSES = ["cat", "dog", "owl"]


def _npz(path: Path) -> Path:
    """Raw uint8 images (12x12 RGB, channels last, as a user's own would be) with class names."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=240)
    templates = rng.integers(0, 256, size=(3, 12, 12, 3))
    noise = rng.normal(scale=30, size=(240, 12, 12, 3))
    images = np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)
    np.savez(path, images=images, labels=labels, class_names=np.array(CLASSES))
    return path


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("predict")
    data = _npz(cwd / "pets.npz")
    run_search_in_process(
        [
            "data=npz",
            f"data.path={data}",
            "data.resolution=16",
            "search.n_trials=2",
            "train.epochs=2",
            "budget.macs=3000000",
            "budget.mode=project",  # every draw scaled into the budget: no over-budget draws to wade through
            "logger=none",
            "study.name=pets",
            "progress=false",
        ],
        cwd,
    )
    return cwd / "results" / "pets"


def test_weights_file_carries_its_model_card(study: Path) -> None:
    saved = torch.load(weights_file(study), map_location="cpu", weights_only=True)
    assert saved["class_names"] == CLASSES
    assert saved["input_shape"] == [3, 16, 16]
    assert len(saved["mean"]) == len(saved["std"]) == 3 and all(s > 0 for s in saved["std"])
    report = (study / "report.md").read_text()
    assert f"test accuracy {saved['test_accuracy']:.4f}" in report
    assert f"validation accuracy {saved['val_accuracy']:.4f}" in report


def test_raw_images_are_prepared_as_training_saw_them(study: Path) -> None:
    trained = load_trained(study)
    assert trained.input_shape == (3, 16, 16) and trained.class_names == tuple(CLASSES)
    cfg = data_config("npz", path=str(study.parents[1] / "pets.npz"), resolution=16)
    splits = load_data(cfg)
    raw = np.load(cfg.path)["images"]
    *_, test_idx = split_indices(np.load(cfg.path)["labels"], cfg, with_test=True)
    prepared = trained.preprocess(raw[test_idx])  # uint8, N x H x W x C, 12x12
    assert torch.allclose(prepared, splits.test.images, atol=1e-5)
    with torch.no_grad():
        expected = trained.model(splits.test.images).argmax(dim=1)
    names = trained.predict(raw[test_idx])
    assert names == [CLASSES[i] for i in expected.tolist()]
    # one image, channels last, or as floats in [0, 1] channels first: the same answer
    assert trained.predict(raw[test_idx[0]]) == names[:1]
    assert trained.predict(torch.from_numpy(raw[test_idx[:4]]).permute(0, 3, 1, 2) / 255.0) == names[:4]
    accuracy = np.mean([n == CLASSES[y] for n, y in zip(names, splits.test.labels.tolist())])
    assert accuracy == pytest.approx(trained.accuracy["test"])


def test_torchscript_export_gives_the_same_logits(study: Path, tmp_path: Path) -> None:
    trained = load_trained(study)
    (path,) = export(trained, tmp_path, ("torchscript",))
    extra = {"model_card.json": ""}
    loaded = torch.jit.load(str(path), _extra_files=extra)
    card = json.loads(extra["model_card.json"])
    assert card["class_names"] == CLASSES and card["input_shape"] == [3, 16, 16]
    images = torch.rand(5, 3, 16, 16)
    assert torch.allclose(loaded(images), trained.logits(images), atol=1e-5)


@pytest.mark.slow
def test_onnx_export_gives_the_same_logits(study: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript", reason="ONNX export needs onnx and onnxscript (pip install inception-nas[onnx])")
    ort = pytest.importorskip("onnxruntime", reason="running the ONNX file needs onnxruntime")
    trained = load_trained(study)
    (path,) = export(trained, tmp_path, ("onnx",))
    images = torch.rand(7, 3, 16, 16)  # another batch size than the export's example
    (logits,) = ort.InferenceSession(str(path)).run(None, {"images": images.numpy()})
    assert np.allclose(logits, trained.logits(images).numpy(), atol=1e-4)


def test_export_cli_and_bad_paths(study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert export_main([str(study), "--out", str(tmp_path / "out")]) == 0
    assert len(list((tmp_path / "out").glob("*.pt"))) == 1
    for bad in (tmp_path / "nope", tmp_path / "out"):  # nothing there; a folder without weights/
        assert export_main([str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: weights='{bad}'") and "\n" not in err
    checkpoint = tmp_path / "checkpoint.pt"
    saved = torch.load(weights_file(study), weights_only=True)
    torch.save({"genotype": saved["genotype"], "state_dict": saved["state_dict"]}, checkpoint)  # no model card
    assert export_main([str(checkpoint)]) == 2
    assert "error: weights=" in capsys.readouterr().err


@pytest.mark.slow
def test_ablation_keeps_weights_when_asked(tmp_path: Path) -> None:
    args = [
        "experiment=reductions",
        "experiment.per_module=false",
        "experiment.reduce_ratios=[]",
        "experiment.seeds=1",
        "data=synthetic",
        "data.n_samples=256",
        "train.epochs=1",
        "logger=none",
    ]

    def ablate(*extra: str) -> str:  # in this process: its files are the subject
        proc = run_cli_in_process(ablate_main, [*args, *extra], tmp_path)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    directory = tmp_path / "results" / "reductions"
    ablate()
    assert not (directory / "weights").exists()
    again = ablate("keep_weights=true")  # cached runs without weights train again, once
    assert again.count("cached") == 0
    files = sorted((directory / "weights").glob("*.pt"))
    assert [p.stem for p in files] == sorted(p.stem for p in (directory / "runs").glob("*.json"))
    records = {p.stem: json.loads(p.read_text()) for p in (directory / "runs").glob("*.json")}
    for path in files:
        trained = load_trained(path)
        assert trained.accuracy["test"] == pytest.approx(records[path.stem]["test_accuracy"])
        assert trained.genotype.key == records[path.stem]["key"]
    assert ablate("keep_weights=true").count("cached") == len(files)


def test_weights_that_do_not_fit_their_genotype_are_one_line(study: Path, tmp_path: Path) -> None:
    saved = torch.load(weights_file(study), weights_only=True)
    broken = tmp_path / "broken.pt"
    torch.save({**saved, "state_dict": {}}, broken)
    with pytest.raises(ValueError, match=r"^weights='.*broken.pt': its weights do not fit genotype"):
        load_trained(broken)
