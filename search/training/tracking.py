"""One W&B run per trained trial. wandb is imported only when enabled, and any W&B failure
becomes one warning and disables logging: tracking never fails a study.

Offline by default: runs land in `<dir>/wandb/offline-run-*` and `wandb sync <dir>/wandb`
uploads them later. `logger.mode=online` logs live where the user has a key; nothing else
changes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from search.config.credentials import mask_credentials
from search.config.schema import LoggerConfig
from search.training.interrupt import PoliteStop

__all__ = ["TrialRun", "Tracker"]

log = logging.getLogger(__name__)


class TrialRun:
    """A live W&B run, or a no-op when tracking is off or broken."""

    def __init__(self, tracker: Tracker | None, run: Any | None) -> None:
        self._tracker = tracker
        self._run = run

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if self._run is not None and self._tracker is not None:
            self._tracker._guard(lambda: self._run.log(metrics, step=step))

    def log_table(self, name: str, columns: list[str], rows: list[list[Any]]) -> None:
        """One W&B table (a supernet search's scored candidates: thousands of rows, one run)."""
        if self._run is not None and self._tracker is not None:
            table = self._tracker._import().Table
            self._tracker._guard(lambda: self._run.log({name: table(columns=columns, data=rows)}))

    def finish(self, summary: dict[str, Any], *, failed: bool = False, interrupted: bool = False) -> None:
        """Close the run; a failed trial's run is marked failed in W&B (exit code 1). An
        interrupted one (SIGTERM, a requeue, a storage outage: the trial is handed back for a
        retry) is marked preempting first, so that W&B shows it as preempted, not as a bug."""
        if self._run is None or self._tracker is None:
            return

        def _finish() -> None:
            self._run.summary.update(summary)
            if interrupted:
                self._run.mark_preempting()
            self._run.finish(exit_code=1 if failed or interrupted else 0)

        self._tracker._guard(_finish)
        self._run = None

    @contextlib.contextmanager
    def preempted_on_stop(self) -> Iterator[None]:
        """A stop (SIGTERM, Ctrl-C, a requeue's exit) on the way out of the block closes the run
        as preempted: W&B shows a run the same command trains again, not a crash."""
        try:
            yield
        except (PoliteStop, SystemExit, KeyboardInterrupt):
            self.finish({"state": "interrupted"}, interrupted=True)
            raise


class Tracker:
    """Creates one W&B run per trial, grouped by study."""

    def __init__(self, cfg: LoggerConfig, *, study: str, directory: Path) -> None:
        self.cfg = cfg
        self.study = study
        self.directory = Path(cfg.dir) if cfg.dir else directory
        self.enabled = cfg.name == "wandb" and cfg.mode != "disabled"
        self._wandb: Any = None

    def _guard(self, action: Any) -> Any:
        try:
            return action()
        except Exception as err:  # W&B must never fail a study
            self.enabled = False
            message = (
                f"W&B logging disabled: {err.__class__.__name__}: "
                f"{mask_credentials(str(err)).splitlines()[0] if str(err) else ''}"
            )
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            log.warning(message)
            return None

    def _import(self) -> Any:
        if self._wandb is None:
            os.environ.setdefault("WANDB_SILENT", "true")
            import wandb

            self._wandb = wandb
        return self._wandb

    def start(self, *, name: str, config: dict[str, Any]) -> TrialRun:
        if not self.enabled:
            return TrialRun(None, None)

        def _start() -> Any:
            wandb = self._import()
            self.directory.mkdir(parents=True, exist_ok=True)
            return wandb.init(
                project=self.cfg.project,
                entity=self.cfg.entity,
                group=self.cfg.group or self.study,
                name=name,
                job_type="trial",
                config=config,
                dir=str(self.directory),
                mode=self.cfg.mode,
                reinit="finish_previous",
                settings=self._import().Settings(console="off", silent=True),
            )

        return TrialRun(self, self._guard(_start))
