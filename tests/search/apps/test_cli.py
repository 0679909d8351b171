"""What every command line shares: its groups in --help, groups of another app explained, the
user's own --config-dir, and the Hydra configs shipped in the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from search.apps.cli import COMMANDS, CONF_DIR, config_groups
from search.apps.search import precheck
from search.config.schema import ConfigError
from search.data.sources import register
from tests.search.conftest import REPO, search_env


@pytest.fixture(autouse=True)
def _schemas() -> None:
    register()  # what each command's main() does first


MODULES = {
    "search": "search",
    "ablate": "search.apps.ablate",
    "compare": "search.apps.compare",
    "benchmark": "search.apps.benchmark",
    "supernet": "search.apps.supernet",
}


@pytest.mark.slow
@pytest.mark.parametrize("config_name", sorted(COMMANDS))
def test_help_names_the_groups_this_command_takes(config_name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", MODULES[config_name], "--help"],
        capture_output=True,
        text=True,
        env=search_env(),
        timeout=120,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr
    header = proc.stdout.splitlines()[0]
    assert header.startswith(COMMANDS[config_name])
    groups = config_groups(config_name)
    listed = header.split("Its groups are ")[1].split(";")[0].replace(" and ", ", ").split(", ")
    assert listed == groups
    others = {g for g in (p.name for p in CONF_DIR.iterdir() if p.is_dir()) if g != "hydra"} - set(groups)
    assert all(f"{g} belongs to" in header for g in others), header  # every other group --help lists is explained


def test_a_group_of_another_command_says_where_it_belongs() -> None:
    option = sorted(p.stem for p in (CONF_DIR / "size").glob("*.yaml"))[0]
    with pytest.raises(
        ConfigError,
        match=r"^size: not a group of inception-search "
        r"\(inception-search takes data, experiment, hparams_search, logger, search_data\); "
        r"size belongs to inception-benchmark",
    ):
        precheck([f"size={option}"])


def test_the_users_config_dir_is_checked_too(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.yaml").write_text(
        "defaults:\n  - synthetic_schema\n  - _self_\n\nname: synthetic\nn_samples: 96\n"
    )
    cfg = precheck(["--config-dir", str(tmp_path), "data=mine"])
    assert cfg.data.name == "synthetic" and cfg.data.n_samples == 96  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"data=theirs: no such option \(one of .*mine.*\)"):
        precheck([f"--config-dir={tmp_path}", "data=theirs"])
    with pytest.raises(ConfigError, match=r"^--config-dir='.*nope': no such folder"):
        precheck(["-cd", str(tmp_path / "nope"), "data=mine"])


def test_the_wheel_ships_every_config_and_a_console_script_per_command(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    configs = {f"search/conf/{p.relative_to(CONF_DIR)}" for p in CONF_DIR.rglob("*.yaml")}
    assert configs and configs <= names, sorted(configs - names)
    scripts = yaml.safe_load(entry_points.replace("[console_scripts]", "").replace(" = ", ": "))
    assert set(scripts) >= {*COMMANDS.values(), "inception-report", "inception-cost", "inception-export"}
