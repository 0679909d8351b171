from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import space


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "space", *args], capture_output=True, text=True)


def test_table_for_a_preset() -> None:
    out = _run("googlenet", "--stem", "separable")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    row = next(line for line in lines if line.startswith("3a "))
    assert "28x28x256" in row and "128,049,152" in row
    assert any(line.startswith("inference") and "1,498,677,248" in line for line in lines)


def test_json_equals_the_api(tmp_path: Path) -> None:
    g = space.random_genotype(3)
    path = space.dump(g, tmp_path / "g.yaml")
    out = _run(str(path), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    c = space.cost(g)
    assert data["key"] == g.key and data["macs"] == c.macs and data["train_params"] == c.train_params
    assert data["per_module"]["3a"]["macs"] == c.per_module["3a"].macs


def test_bad_input_is_one_line_and_nonzero(tmp_path: Path) -> None:
    for args in (["resnet"], [str(tmp_path / "missing.yaml")]):
        out = _run(*args)
        assert out.returncode == 2
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr
