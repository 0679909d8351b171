"""Security hygiene: safe loaders only, and storage credentials masked everywhere they could be
written (messages, logs, reports, Hydra's saved config, W&B config and metadata)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from search.config.credentials import mask_credentials
from tests.search.conftest import REPO, run_search
from tests.search.storages import postgres_problem, unique_name

SOURCES = sorted(p for d in ("space", "search", "bench") for p in (REPO / d).rglob("*.py"))


def test_sources_use_only_safe_loaders() -> None:
    """yaml.safe_load only; torch.load always with weights_only=True; no bare pickle.load."""
    assert SOURCES
    for path in SOURCES:
        text = path.read_text()
        assert not re.search(r"yaml\.(load|unsafe_load|full_load)\(", text), path
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{path}: {call}"
        assert "pickle.load(" not in text and "pickle.loads(" not in text, path


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql+psycopg://nas:pw@db:5432/nas", "postgresql+psycopg://nas:***@db:5432/nas"),
        ("mysql://u:p%40ss@h/db?charset=utf8", "mysql://u:***@h/db?charset=utf8"),
        ("postgresql://u@h/db?password=pw&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_mask_credentials(text: str, masked: str) -> None:
    assert mask_credentials(text) == masked


@pytest.mark.slow
def test_a_password_in_the_storage_url_is_written_nowhere(tmp_path: Path) -> None:
    """A real study on PostgreSQL with the password in `search.storage`, W&B on (offline): the
    password appears in no output and no file; the masked URL does, where the storage is named."""
    url, problem = postgres_problem()
    if problem:
        pytest.skip(problem)
    password = re.match(r".*://[^:/@]*:([^@]*)@", url)
    if password is None:
        pytest.skip(f"{mask_credentials(url)} carries no password to mask")
    secret = password[1]
    name = unique_name("mask")
    args = [
        "data=synthetic",
        "data.n_samples=256",
        "train.epochs=1",
        "search.n_trials=2",
        "budget.mode=project",
        "progress=false",
        "logger=wandb",
        f"study.name={name}",
        f"search.storage={url}",
    ]
    proc = run_search(args, tmp_path)
    assert secret not in proc.stdout + proc.stderr
    files = [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files)
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
    masked = mask_credentials(url)
    directory = tmp_path / "results" / name
    for written in ("report.md", "search.log"):
        assert masked in (directory / written).read_text(), written
    assert masked.encode() in b"".join(p.read_bytes() for p in files if p.suffix == ".wandb")  # the run's config
