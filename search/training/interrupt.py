"""SIGTERM as a polite stop: what SLURM (preemption, time limit, `scancel`) and Kubernetes send
before they kill a job, with a grace period of seconds.

While a network trains (`deferred()`), the first SIGTERM only sets a flag; the trainer checks it
between batches (`check()`) and raises PoliteStop there, so the trial in flight can be saved at
its last finished epoch and handed back for a retry. Outside training the first SIGTERM raises
PoliteStop at once: nothing is in flight that a wait would save. A second SIGTERM exits at once
(SystemExit 143), as does Ctrl-C (KeyboardInterrupt, Python's own handler), whatever is running.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["EXIT_CODE", "PoliteStop", "check", "deferred", "install", "requested"]

EXIT_CODE = 128 + signal.SIGTERM  # 143: what a shell reports for a process ended by SIGTERM


class PoliteStop(BaseException):
    """A SIGTERM stopped this process. A BaseException, like KeyboardInterrupt: no `except
    Exception` on the way out (Optuna's trial runner among them) mistakes it for a failure."""


_requested = threading.Event()
_training = threading.Event()


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    if _requested.is_set():
        raise SystemExit(EXIT_CODE)
    _requested.set()
    if not _training.is_set():
        raise PoliteStop("stopped by SIGTERM between trials")


def install() -> None:
    """Handle SIGTERM politely in this process (call from its main thread)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise PoliteStop if a SIGTERM came: the trainer's call between batches."""
    if _requested.is_set():
        raise PoliteStop("stopped by SIGTERM")


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """While a network trains, a first SIGTERM waits for the next `check()`."""
    _training.set()
    try:
        check()
        yield
    finally:
        _training.clear()
