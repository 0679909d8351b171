from __future__ import annotations

from pathlib import Path

import pytest

import space

GENOTYPES = [space.preset(name) for name in space.PRESETS] + [space.random_genotype(s) for s in range(20)]


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
@pytest.mark.parametrize("genotype", GENOTYPES, ids=lambda g: g.key)
def test_round_trip_is_exact(genotype: space.Genotype, suffix: str, tmp_path: Path) -> None:
    path = space.dump(genotype, tmp_path / f"g{suffix}")
    loaded = space.load(path)
    assert loaded == genotype
    assert loaded.key == genotype.key
    assert space.cost(loaded).macs == space.cost(genotype).macs


def test_yaml_file_is_plain_and_readable(tmp_path: Path) -> None:
    path = space.dump(space.preset("googlenet"), tmp_path / "g.yaml")
    text = path.read_text()
    assert "!!" not in text and "c3_reduce: 96" in text


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("bad.yaml", "stem: [unclosed", "not valid YAML at line"),
        ("bad.json", "{", "not valid JSON at line 1"),
        ("code.yaml", "!!python/object/apply:os.system ['echo hacked']", "not valid YAML"),
        ("list.yaml", "- 1\n- 2\n", "must be a mapping of Genotype fields"),
        ("typo.yaml", "stem: {}\nstages: []\nresolutoin: 32\n", "genotype.resolutoin=32: unknown field"),
        ("g.txt", "", "unknown suffix '.txt'"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        space.load(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        space.load(tmp_path / "absent.yaml")


def test_invalid_values_in_a_file_name_the_field(tmp_path: Path) -> None:
    data = space.preset("googlenet-small").to_dict()
    data["stages"][1]["modules"][2]["c3"] = 0
    path = tmp_path / "g.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="4c.c3=0: must be a positive integer"):
        space.load(path)
