from __future__ import annotations

from pathlib import Path

import pytest

from search.config.credentials import mask_credentials
from search.config.schema import LoggerConfig
from search.training.tracking import Tracker


@pytest.mark.parametrize(
    "text, masked",
    [
        ("postgresql+psycopg://alice:s3cret@db:5432/nas", "postgresql+psycopg://alice:***@db:5432/nas"),
        ("mysql://root:pw@127.0.0.1/x and sqlite:///a.db", "mysql://root:***@127.0.0.1/x and sqlite:///a.db"),
        ("sqlite:////tmp/study.db", "sqlite:////tmp/study.db"),
    ],
)
def test_credentials_are_masked(text: str, masked: str) -> None:
    assert mask_credentials(text) == masked


def test_a_wandb_failure_is_a_warning_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where W&B wants a folder")
    tracker = Tracker(LoggerConfig(dir=str(blocker / "wandb")), study="s", directory=tmp_path)
    with pytest.warns(RuntimeWarning, match="W&B logging disabled"):
        run = tracker.start(name="trial-0000", config={})
    run.log({"x": 1}, step=1)  # no-ops from here on
    run.finish({})
    assert not tracker.enabled


def test_logger_none_never_imports_wandb(tmp_path: Path) -> None:
    tracker = Tracker(LoggerConfig(name="none"), study="s", directory=tmp_path)
    tracker.start(name="t", config={}).finish({})
    assert tracker._wandb is None and not any(tmp_path.iterdir())
