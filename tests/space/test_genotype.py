from __future__ import annotations

import dataclasses
import math

import pytest

import space
from space.genotype import Aux, AuxHead, Genotype, InceptionModule, MaxPool, Stage, Stem


def _small(**changes) -> Genotype:
    return space.preset("googlenet-small").replace(**changes)


def _with_module(**widths) -> Genotype:
    g = space.preset("googlenet-small")
    first = dataclasses.replace(g.stages[0].modules[0], **widths)
    stage = dataclasses.replace(g.stages[0], modules=(first, *g.stages[0].modules[1:]))
    return g.replace(stages=(stage, *g.stages[1:]))


BAD = {
    "zero width": (lambda: _with_module(c1=0), "3a.c1=0"),
    "negative width": (lambda: _with_module(c3=-8), "3a.c3=-8"),
    "float width": (lambda: _with_module(c5=8.5), "3a.c5=8.5"),
    "bool width": (lambda: _with_module(c1=True), "3a.c1=True"),
    "zero reduce": (lambda: _with_module(c3_reduce=0), "3a.c3_reduce=0"),
    "negative pool proj": (lambda: _with_module(pool_proj=-1), "3a.pool_proj=-1"),
    "unknown large kind": (lambda: _with_module(large="7x7"), "3a.large='7x7'"),
    "aux on missing module": (
        lambda: _small(aux=Aux(at=("6a",))),
        "aux.at='6a': no such module",
    ),
    "negative aux weight": (lambda: _small(aux=Aux(at=("4a",), weight=-0.1)), "aux.weight=-0.1"),
    "nan aux weight": (lambda: _small(aux=Aux(at=("4a",), weight=math.nan)), "aux.weight=nan"),
    "aux module twice": (lambda: _small(aux=Aux(at=("4a", "4a"))), "aux.at=['4a', '4a']"),
    "aux head dropout": (lambda: AuxHead(dropout=1.5), "aux.head.dropout=1.5"),
    "aux head pool": (lambda: AuxHead(pool="max"), "aux.head.pool='max'"),
    "resolution below downsampling": (
        lambda: space.preset("googlenet-torchvision", resolution=16),
        "resolution=16: too small",
    ),
    "aux map too small for the paper pool": (
        lambda: space.preset("googlenet", resolution=64),
        "aux.at='4a': its 4x4 output is too small",
    ),
    "zero resolution": (lambda: _small(resolution=0), "resolution=0"),
    "zero classes": (lambda: _small(num_classes=0), "num_classes=0"),
    "zero input channels": (lambda: _small(in_channels=0), "in_channels=0"),
    "dropout of one": (lambda: _small(dropout=1.0), "dropout=1.0"),
    "unknown norm": (lambda: _small(norm="layer"), "norm='layer'"),
    "unknown stem": (lambda: Stem(kind="huge"), "stem.kind='huge'"),
    "zero stem width": (lambda: Stem(conv3=0), "stem.conv3=0"),
    "pool padding over half the kernel": (lambda: MaxPool(kernel=3, padding=2), "pool.padding=2"),
    "no stages": (lambda: _small(stages=()), "stages=[]"),
    "empty stage": (lambda: _small(stages=(Stage(modules=()),)), "stages[0].modules=[]"),
}


@pytest.mark.parametrize("build, message", BAD.values(), ids=BAD.keys())
def test_invalid_genotypes_raise_naming_field_and_value(build, message: str) -> None:
    with pytest.raises(ValueError) as err:
        build()
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_module_names_follow_the_paper() -> None:
    names = [name for name, _ in space.preset("googlenet").named_modules()]
    assert names == ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]


def test_shapes_follow_table_1() -> None:
    g = space.preset("googlenet")
    sizes = {name: (s.size, s.out_channels) for name, s in g.shapes.items()}
    assert sizes["3a"] == (28, 256) and sizes["3b"] == (28, 480)
    assert sizes["4a"] == (14, 512) and sizes["4d"] == (14, 528) and sizes["4e"] == (14, 832)
    assert sizes["5a"] == (7, 832) and sizes["5b"] == (7, 1024)


def test_naive_module_passes_its_input_through_the_pool_branch() -> None:
    m = InceptionModule(64, None, 128, None, 32, None)
    assert m.out_channels(192) == 64 + 128 + 32 + 192


def test_key_is_stable_and_tracks_content() -> None:
    g = space.preset("googlenet")
    assert g.key == space.preset("googlenet").key
    # A golden value: keys name files and caches, so a change of canonical form must be deliberate.
    assert g.key == "1d93d9f122d9"
    assert space.preset("googlenet", dropout=0.5).key != g.key
    assert len({space.preset(name).key for name in space.PRESETS}) == len(space.PRESETS)


def test_from_dict_rejects_unknown_and_missing_fields() -> None:
    data = space.preset("googlenet-small").to_dict()
    data["stem"]["colour"] = "red"
    with pytest.raises(ValueError, match=r"genotype\.stem\.colour='red': unknown field"):
        Genotype.from_dict(data)
    data = space.preset("googlenet-small").to_dict()
    del data["stages"][0]["modules"][0]["c1"]
    with pytest.raises(ValueError, match=r"genotype\.stages\[0\]\.modules\[0\]: .*c1"):
        Genotype.from_dict(data)


def test_genotypes_are_frozen_and_hashable() -> None:
    g = space.preset("googlenet")
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.resolution = 32  # type: ignore[misc]
    assert len({g, space.preset("googlenet")}) == 1
