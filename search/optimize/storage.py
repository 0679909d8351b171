"""Storage URL -> Optuna storage, with heartbeats on RDB storages.

Kept free of torch (config types are for type checking only): opening a storage costs no more
than Optuna's own import.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from search.config.credentials import mask_credentials

if TYPE_CHECKING:
    from search.config.schema import Config

__all__ = ["STORAGE_EXIT_CODE", "StorageUnavailable", "heartbeat_enabled", "open_storage", "storage_url"]

STORAGE_EXIT_CODE = 75  # EX_TEMPFAIL (sysexits.h): a temporary failure, the same command can be run again

log = logging.getLogger(__name__)


class StorageUnavailable(BaseException):
    """The storage stayed unreachable past `search.storage_patience`. A BaseException, like
    KeyboardInterrupt: no `except Exception` on the way out (Optuna's trial runner among them)
    turns it into a failed trial, and the trial in flight stays RUNNING in the storage, which a
    resume fails and retries from its checkpoint."""


def storage_url(cfg: Config, directory: Path) -> str:
    """`search.storage`, or the study folder's own SQLite file."""
    return cfg.search.storage or f"sqlite:///{(directory / 'study.db').resolve()}"


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = 3,
    patience: float | None = None,
) -> optuna.storages.BaseStorage:
    """An RDB URL (sqlite, postgresql, mysql), or `journal:///path/file.log` for Optuna's journal
    file storage (the choice for a shared file system, where SQLite locks up). RDB storages get
    heartbeats: a trial whose worker stops beating for `grace_period` seconds is failed, and a
    copy is queued (up to `max_retry` times) that resumes from the dead trial's checkpoint.
    A server storage that stops answering is waited for up to `patience` seconds (`_wait_for_server`)."""
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
                storage = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True}, **heartbeat)
                if patience is not None:
                    _wait_for_server(storage, url, patience)
                return storage
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
        connection.isolation_level = None  # no implicit BEGIN from the driver: `_begin` says which
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    def _begin(connection: Any) -> None:
        # Every transaction takes SQLite's write lock when it starts. Optuna claims a WAITING
        # trial (a retry, the enqueued hand design) with SELECT ... FOR UPDATE, which SQLite
        # ignores: two processes could both read WAITING and both run the trial ("Cannot tell
        # a COMPLETE trial" in a CI run). BEGIN IMMEDIATE makes the read and the write one step.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    sqlalchemy.event.listen(storage.engine, "connect", _pragmas)
    sqlalchemy.event.listen(storage.engine, "begin", _begin)
    storage.engine.dispose()  # connections opened before the listeners are dropped
    return storage


def _wait_for_server(storage: optuna.storages.RDBStorage, url: str, patience: float) -> None:
    """Every new connection to the server retries with back-off (1, 2, 4, ... 30 s, one log line
    per wait) until it answers or `patience` seconds have passed; then this process gives up
    for good (StorageUnavailable, at once on every later connection). With `pool_pre_ping`, a
    connection the server dropped is replaced on its next use, so a server restart or a
    fail-over pauses the worker (training included, at its next write) instead of killing it.
    Attached after the storage's first connection, so a wrong URL or password fails at once."""
    import sqlalchemy

    shown = mask_credentials(url)
    gave_up: list[str] = []
    given_up = threading.Event()  # wakes the other threads' waits (Optuna's heartbeat thread)

    def connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        waited, pause = 0.0, 1.0
        while True:
            if given_up.is_set():
                raise StorageUnavailable(gave_up[0])
            try:
                return dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError as err:
                reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else err.__class__.__name__
                if waited >= patience:
                    gave_up.append(
                        f"search.storage={shown!r}: unreachable for {waited:.0f} s, past search.storage_patience="
                        f"{patience:g} ({mask_credentials(reason)}); what was recorded is kept: run the same command "
                        "again once the storage is back, and the trial in flight resumes from its last checkpoint"
                    )
                    given_up.set()
                    raise StorageUnavailable(gave_up[0]) from None
                pause = min(pause, patience - waited)
                log.warning(
                    "storage %s unreachable (%s): retrying in %.0f s (%.0f of search.storage_patience=%g s waited)",
                    shown,
                    mask_credentials(reason),
                    pause,
                    waited,
                    patience,
                )
                given_up.wait(pause)
                waited += pause
                pause = min(2 * pause, 30.0)

    sqlalchemy.event.listen(storage.engine, "do_connect", connect)
    if threading.excepthook is not _quiet_when_given_up:
        _hooks.append(threading.excepthook)
        threading.excepthook = _quiet_when_given_up


_hooks: list[Any] = []  # the excepthook _quiet_when_given_up stands in front of


def _quiet_when_given_up(args: Any) -> None:
    """Optuna's heartbeat thread also meets StorageUnavailable: the main thread says it in one
    line, so the thread's traceback is left out; any other exception is reported as before."""
    if not isinstance(args.exc_value, StorageUnavailable):
        _hooks[0](args)
