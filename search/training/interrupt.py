"""SIGTERM and Ctrl-C (SIGINT) as a polite stop. SLURM (preemption, time limit, `scancel`) and
Kubernetes send SIGTERM before they kill a job; a person at a terminal presses Ctrl-C. Both mean
"stop, and keep what you can".

While a network trains (`deferred()`), the first signal only sets a flag; the trainer checks it
between batches (`check()`) and raises PoliteStop there, so the trial in flight can be saved at
its last finished epoch and handed back for a retry. Outside training the first signal raises
PoliteStop at once: nothing is in flight that a wait would save. A second signal, of either
kind, raises StopNow (a SystemExit) wherever the process is: the way out still saves and hands
back what it holds, but waits for no batch. Either way the command prints one line, never a
traceback, and exits 128 + the first signal's number (130 for Ctrl-C, 143 for SIGTERM), as a
shell reports a process ended by that signal.

`held()` makes a second signal wait out a short critical section (a trial being handed back),
so a second Ctrl-C cannot leave a trial failed without its retry.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from types import FrameType
from typing import Any, TypeVar

__all__ = [
    "PoliteStop",
    "StopNow",
    "check",
    "deferred",
    "exit_code",
    "held",
    "install",
    "process_pool",
    "requested",
    "signal_name",
    "told",
]

T = TypeVar("T")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


class PoliteStop(BaseException):
    """A first SIGTERM or Ctrl-C stopped this process. A BaseException, like KeyboardInterrupt:
    no `except Exception` on the way out (Optuna's trial runner among them) mistakes it for a
    failure."""


class StopNow(SystemExit):
    """A second signal: stop at once. A SystemExit, so that it ends the process quietly
    wherever it lands, with the signal's exit code; `message` says what was kept."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(code)
        self.message = message or f"stopped at once by a second {signal_name()}"

    def __str__(self) -> str:
        return self.message


_requested = threading.Event()
_training = threading.Event()
_holding: list[int] = []  # one entry per held() block open
_first: list[int] = []  # the first signal's number, once one came
_pending: list[int] = []  # a second signal that came inside held()


def signal_name() -> str:
    """The first signal, as a person knows it ("Ctrl-C (SIGINT)", "SIGTERM")."""
    return _NAMES.get(_first[0], "a signal") if _first else "SIGTERM"


def exit_code() -> int:
    """128 + the first signal's number: 130 after Ctrl-C, 143 after SIGTERM."""
    return 128 + (_first[0] if _first else signal.SIGTERM)


def told(stop: PoliteStop | StopNow, what_was_kept: str) -> PoliteStop | StopNow:
    """The same stop, its line extended by what the code it passed through kept."""
    line = f"{stop}; {what_was_kept}"
    return StopNow(int(stop.code or 1), line) if isinstance(stop, StopNow) else PoliteStop(line)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    if _requested.is_set():
        if _holding:
            _pending[:] = [signum]
            return
        raise StopNow(exit_code())
    _first[:] = [signum]
    _requested.set()
    if not _training.is_set():
        raise PoliteStop(f"stopped by {signal_name()}")  # nothing in flight


def install() -> None:
    """Handle SIGTERM and SIGINT politely in this process (call from its main thread), with
    no stop requested yet."""
    _requested.clear()
    _holding.clear()
    _first.clear()
    _pending.clear()
    for number in _SIGNALS:
        signal.signal(number, _on_signal)


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise PoliteStop if a signal came: the trainer's call between batches."""
    if _requested.is_set():
        raise PoliteStop(f"stopped by {signal_name()}")


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """While a network trains, a first signal waits for the next `check()`."""
    _training.set()
    try:
        check()
        yield
    finally:
        _training.clear()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """A second signal waits until the block ends (then stops as it would have): for a few
    storage writes that must happen together."""
    _holding.append(1)
    try:
        yield
    finally:
        _holding.pop()
        if _pending and not _holding:
            _pending.clear()
            raise StopNow(exit_code())


class _InPlace:
    """`map` as a one-process pool would run it, in this process: nothing to spawn."""

    def map(self, fn: Callable[..., T], *iterables: Iterable[Any]) -> Iterator[T]:
        return map(fn, *iterables)


@contextlib.contextmanager
def process_pool(processes: int) -> Iterator[ProcessPoolExecutor | _InPlace]:
    """`processes` spawned processes (CUDA and OpenMP state is not forked) that stop politely
    too, or for one, this process itself (a spawned interpreter would only add its start-up).
    A stop here cancels the jobs not started yet and waits for those in flight, which a
    terminal's Ctrl-C or a job's SIGTERM reaches as well (they reach the whole process group):
    each ends at its next batch, and what finished before is the caller's to keep."""
    if processes == 1:
        yield _InPlace()
        return
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"), initializer=install)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
