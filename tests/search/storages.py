"""The three shared storages the scale-out tests run against: SQLite, Optuna's journal file and
PostgreSQL. PostgreSQL comes from `INCEPTION_TEST_POSTGRES` (set by `.ci/run`, which starts a
server on loopback) or the URL `.ci/postgres.sh` creates; tests skip, saying so, without one."""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from search.config.credentials import mask_credentials
from search.optimize.storage import open_storage

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


class PostgresServer:
    """A PostgreSQL server of this test's own (the binaries `.ci/postgres.sh` installs), on a free
    loopback port and a throw-away data folder, so a test can stop and start it without touching
    the server the other tests share. Runs as the `postgres` user under root (initdb refuses
    root), as the current user otherwise."""

    def __init__(self) -> None:
        import shutil
        import socket
        import tempfile

        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
        if not versions:
            pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin): run .ci/postgres.sh (as CI does)")
        self.bin = versions[-1].parent
        self.data = Path(tempfile.mkdtemp(prefix="inception-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._as_owner("initdb", "-D", str(self.data / "db"), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self._as_owner("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "faults")
        # trust authentication ignores the password: it is there to be masked in every message
        self.url = f"postgresql+psycopg://postgres:s3cret-pw@127.0.0.1:{self.port}/faults"

    def _as_owner(self, tool: str, *args: str) -> None:
        import subprocess

        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            pytest.skip(f"cannot run a PostgreSQL server of the test's own ({tool}: {proc.stderr.strip()[:200]})")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.data / "log")
        self._as_owner("pg_ctl", "-D", str(self.data / "db"), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        """A fast shutdown: what a restart or a fail-over does to the open connections."""
        self._as_owner("pg_ctl", "-D", str(self.data / "db"), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        import shutil
        import subprocess

        command = [str(self.bin / "pg_ctl"), "-D", str(self.data / "db"), "-m", "immediate", "stop"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, capture_output=True, timeout=60)
        shutil.rmtree(self.data, ignore_errors=True)


@contextlib.contextmanager
def one_storage(url: str) -> Iterator[Any]:
    """One storage for a polling loop, its connections closed after it: a storage opened per
    poll leaves its connections to the garbage collector, and a loop polling every 20 ms used up
    PostgreSQL's connection slots in a CI run."""
    storage = open_storage(url)
    try:
        yield storage
    finally:
        engine = getattr(storage, "engine", None)  # RDB storages; the journal has none
        if engine is not None:
            engine.dispose()
