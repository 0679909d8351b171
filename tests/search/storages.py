"""The three shared storages the scale-out tests run against: SQLite, Optuna's journal file and
PostgreSQL. PostgreSQL comes from `INCEPTION_TEST_POSTGRES` (set by `.ci/run`, which starts a
server on loopback) or the URL `.ci/postgres.sh` creates; tests skip, saying so, without one."""

from __future__ import annotations

import functools
import os
import uuid
from pathlib import Path

import pytest

from search.config.credentials import mask_credentials

STORAGES = ("sqlite", "journal", "postgresql")
POSTGRES_DEFAULT = "postgresql+psycopg://inception:inception-ci@127.0.0.1:5432/inception_test"


@functools.cache
def postgres_problem() -> tuple[str, str | None]:
    """(url, why it cannot be used or None)."""
    url = os.environ.get("INCEPTION_TEST_POSTGRES", POSTGRES_DEFAULT)
    try:
        import psycopg  # noqa: F401
        import sqlalchemy

        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
        return url, (
            f"no PostgreSQL server for the storage tests at {mask_credentials(url)} ({reason[:120]}); "
            "run .ci/postgres.sh (as CI does) or set INCEPTION_TEST_POSTGRES"
        )
    return url, None


def url_or_problem(kind: str, directory: Path) -> tuple[str, str | None]:
    """A storage URL of `kind` (files in `directory`), and why it cannot be used or None."""
    if kind == "sqlite":
        return f"sqlite:///{directory / 'study.db'}", None
    if kind == "journal":
        return f"journal://{directory / 'study.log'}", None
    return postgres_problem()


def storage_url(kind: str, directory: Path) -> str:
    """For tests: the URL, or a skip that names what is missing."""
    url, problem = url_or_problem(kind, directory)
    if problem:
        pytest.skip(problem)
    return url


def unique_name(prefix: str) -> str:
    """Studies in the shared PostgreSQL database never collide between tests or runs."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
