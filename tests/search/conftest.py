from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The tests run the CLI on digits (in memory, seconds per trial) with the settings the main job
# had on digits; each test's own overrides come after these, and the later value wins. The
# main job's Fashion-MNIST settings are tested where they are the subject.
DIGITS = [
    "data=digits",
    "data.subset=null",
    "data.val_size=null",  # the main job's validation split is larger than digits
    "data.val_epoch_size=null",
    "search.confirm.top_k=0",  # confirmation has tests of its own (tests/search/optimize/test_confirm.py)
    "budget.mode=constraint",
    "search.n_trials=30",
    "search.n_workers=1",
    "train.epochs=12",
    "train.schedule=paper",  # the recipe these tests' expectations were written for (the main job: cosine)
]


# A latency table of a machine this suite never runs on (torch 2.0 predates the project's floor).
FOREIGN_HARDWARE = "cuda:NVIDIA H200 torch 2.0.0"


def this_machine() -> str:
    """The hardware string the CLI names with its default device (`train.device=auto`): latency
    tables are keyed by it, so messages about them name it; tests compare with this, never a literal."""
    from search.training.trainer import resolve_device
    from space.latency import hardware

    return hardware(str(resolve_device("auto")))


def search_env(extra_path: Path | None = None, **variables: str) -> dict[str, str]:
    path = [str(extra_path)] if extra_path else []
    return {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": os.pathsep.join([*path, str(REPO)]), **variables}


def _argv(args: list[str]) -> list[str]:
    """`python -m search` with the digits defaults: Hydra's flags (`-m`) first, since its
    argument parser takes the overrides as one positional list that a flag may not split."""
    flags = [a for a in args if a in ("-m", "--multirun")]
    return [sys.executable, "-m", "search", *flags, *DIGITS, *(a for a in args if a not in flags)]


def start_search(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The CLI as a background process (for tests that kill it)."""
    return subprocess.Popen(
        _argv(args),
        cwd=cwd,
        env=env or search_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_search(
    args: list[str], cwd: Path, *, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the CLI exactly as a user would, in `cwd` (results land in cwd/results)."""
    proc = subprocess.run(_argv(args), cwd=cwd, capture_output=True, text=True, env=env or search_env(), timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"search failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_cli_in_process(main: Callable[[], None], argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """A console script's `main()` as `argv` would run it from `cwd`, in this process: the same
    parsing, checks and messages, without a new interpreter importing torch (a few seconds a
    call). For tests whose subject is what a command says and writes, not the process around it
    (exit by signal, worker processes: those start the real CLI). Its exit code is SystemExit's;
    an exception that escapes is printed as Python would print it (so "Traceback" shows). What a
    command sets for its process (signal handlers, logging, Hydra's global state, the working
    folder, torch's CPU threads) is put back."""
    import torch
    from hydra.core.global_hydra import GlobalHydra

    saved_argv, saved_cwd, threads = sys.argv[:], os.getcwd(), torch.get_num_threads()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    root = logging.getLogger()
    root_state = (root.handlers[:], root.level)
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    os.chdir(cwd)
    sys.argv[:] = [sys.argv[0], *argv]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main()
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                if exit_.code is not None and not isinstance(exit_.code, int):
                    print(exit_.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(saved_cwd)
        sys.argv[:] = saved_argv
        for number, handler in handlers.items():
            signal.signal(number, handler)
        root.handlers[:], root.level = root_state
        GlobalHydra.instance().clear()
        torch.set_num_threads(threads)  # a command that sets its own (a confirmation) leaves the suite's
    return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())


def run_search_in_process(args: list[str], cwd: Path, *, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m search` with the digits defaults, as run_search, in this process
    (run_cli_in_process): for a study a test reads, or a message it checks, where the process
    is not the subject."""
    from search.apps.search import main

    argv = _argv(args)[3:]  # the overrides after `python -m search`
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        proc = run_cli_in_process(main, argv, cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"search failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
