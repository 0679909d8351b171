"""The structure CI holds: the layers of import-linter's contracts (pyproject.toml), ruff's form,
and a cost counter that needs no torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (it is a dev dependency: pip install -e '.[dev]')")
    return found


def test_every_import_keeps_to_its_layer() -> None:
    """An upward import, a cycle between layers, torch in the config layer or in the cost
    counter: each breaks a contract and fails here with the import chain that does it."""
    proc = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_is_clean(command: list[str]) -> None:
    proc = subprocess.run([_tool("ruff"), *command, "."], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr


def test_the_cost_counter_imports_no_torch() -> None:
    code = "import sys, space.accounting, space.genotype, space.presets; assert 'torch' not in sys.modules, 'torch'"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_function_fits_on_a_screen() -> None:
    """At most 60 lines per function in space/, search/ and bench/ (decorators not counted)."""
    import ast

    long = [
        f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for root in ("space", "search", "bench")
        for path in sorted((REPO / root).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long, long


def test_the_wheel_lists_every_package() -> None:
    """pyproject.toml lists the packages by hand (conf/ ships as search.conf): a new subpackage
    left out of it would be missing from the wheel, and every console script would fail."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(REPO).parts)
        for root in ("space", "search")
        for p in (REPO / root).rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)


def test_the_tests_mirror_the_layers() -> None:
    """tests/search/<layer>/ for each subpackage of search/: a reader finds a module's tests
    where the module is."""
    layers = {p.name for p in (REPO / "search").iterdir() if (p / "__init__.py").is_file()}
    folders = {p.name for p in (REPO / "tests" / "search").iterdir() if (p / "__init__.py").is_file()}
    assert folders <= layers, sorted(folders - layers)
    assert not list((REPO / "tests" / "search").glob("test_*.py")), "tests of search/ go in its layer's folder"


def test_an_unmarked_test_may_not_start_a_training_command() -> None:
    """The guard of tests/conftest.py that keeps end-to-end runs marked slow: what it counts as
    a training command, and that it refuses one (this test is not marked) but not other processes."""
    from tests.conftest import _Guard, training_command

    python = sys.executable
    for argv in (
        [python, "-m", "search", "data=digits"],
        [python, "-m", "search.apps.ablate", "experiment=aux"],
        [python, str(REPO / "bench" / "noise.py"), "--networks", "3"],
        ["/venv/bin/inception-benchmark", "size=quick"],
        f"{python} -m search.apps.compare",
    ):
        assert training_command(argv) is not None, argv
    for argv in (
        [python, "-m", "search", "--help"],
        [python, "-m", "search.apps.benchmark", "--cfg", "job"],
        [python, "-m", "space", "googlenet"],
        [python, "-m", "search.apps.report", "results/x"],
        [python, "-c", "pass"],
    ):
        assert training_command(argv) is None, argv
    before = subprocess.Popen.__init__
    with _Guard("this test"):
        with pytest.raises(AssertionError, match=r"this test starts a training command as a process .*-m search"):
            subprocess.run([python, "-m", "search", "data=digits"], cwd=REPO)
        assert subprocess.run([python, "-c", "pass"]).returncode == 0
    assert subprocess.Popen.__init__ is before  # put back
