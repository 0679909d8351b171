"""Storage URL -> Optuna storage, with heartbeats on RDB storages.

Kept free of torch (config types are for type checking only): opening a storage costs no more
than Optuna's own import.
"""

from __future__ import annotations

import random
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

if TYPE_CHECKING:
    from search.config.schema import Config

__all__ = ["heartbeat_enabled", "open_storage", "storage_url"]


def storage_url(cfg: Config, directory: Path) -> str:
    """`search.storage`, or the study folder's own SQLite file."""
    return cfg.search.storage or f"sqlite:///{(directory / 'study.db').resolve()}"


def open_storage(
    url: str, *, heartbeat_interval: int | None = None, grace_period: int | None = None, max_retry: int | None = 3
) -> optuna.storages.BaseStorage:
    """An RDB URL (sqlite, postgresql, mysql), or `journal:///path/file.log` for Optuna's journal
    file storage (the choice for a shared file system, where SQLite locks up). RDB storages get
    heartbeats: a trial whose worker stops beating for `grace_period` seconds is failed, and a
    copy is queued (up to `max_retry` times) that resumes from the dead trial's checkpoint."""
    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    heartbeat: dict[str, Any] = {}
    with warnings.catch_warnings():  # heartbeats and retries are "experimental" since Optuna 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if heartbeat_interval:
            heartbeat = {
                "heartbeat_interval": heartbeat_interval,
                "grace_period": grace_period,
                "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
            }
        for attempt in range(_SCHEMA_ATTEMPTS):
            try:
                if url.startswith("sqlite:"):
                    return _sqlite(url, heartbeat)
                return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True}, **heartbeat)
            except Exception as err:
                if attempt + 1 == _SCHEMA_ATTEMPTS or not _lost_schema_race(err):
                    raise
                time.sleep(0.2 + random.random() * (attempt + 1))
    raise AssertionError("unreachable")


_SCHEMA_ATTEMPTS = 5


def heartbeat_enabled(storage: optuna.storages.BaseStorage) -> bool:
    """Whether trials on `storage` beat, so a dead worker's trial is failed and retried (RDB
    storages opened with a heartbeat interval; Optuna 5's journal storage has no heartbeats)."""
    return isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval() is not None


def _lost_schema_race(err: Exception) -> bool:
    """Workers that start together on a new database all create its tables; all but one fail on
    a duplicate (SQLite: alembic_version UNIQUE; PostgreSQL: "already exists") and try again."""
    import sqlalchemy

    text = str(err).lower()
    return isinstance(
        err, (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError, sqlalchemy.exc.OperationalError)
    ) and ("unique" in text or "already exists" in text or "duplicate" in text or "locked" in text)


def _sqlite(url: str, heartbeat: dict[str, Any]) -> optuna.storages.RDBStorage:
    """SQLite in write-ahead-log mode with synchronous=NORMAL: a trial makes ~80 small writes (one
    per suggested parameter and attribute), and without this each one waits for an fsync. A
    killed process loses nothing; only a power cut can roll back the last commits. (On a shared
    file system use PostgreSQL or the journal storage: SQLite locking is not reliable there.)"""
    import sqlalchemy

    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}}, **heartbeat)

    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(storage.engine, "connect", _pragmas)
    storage.engine.dispose()  # connections opened before the listener are dropped
    return storage
