"""Every shipped sampler, as the study builds it, proposes networks of the real search space in
both design spaces, with two workers at once and the constraints the objective stores."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest

import space
from search.config.schema import SAMPLERS, Config
from search.optimize.sample import TrialDraw
from search.optimize.status import Status
from search.optimize.storage import open_storage
from search.optimize.study import CONSTRAINTS_ATTR, _sampler


def _objective(share: str):  # type: ignore[no-untyped-def]
    def objective(trial: optuna.Trial) -> float:
        g = space.sample(TrialDraw(trial), space.Ranges(share=share))
        macs = space.cost(g).macs
        trial.set_user_attr(CONSTRAINTS_ATTR, [macs / 2e9 - 1.0])  # what the objective stores
        trial.set_user_attr("status", Status.COMPLETE)
        return -abs(macs - 1e9) / 1e9

    return objective


# GP in the per-module space (25-72 dimensions) costs about 40 s of fitting: it runs in the stage space.
@pytest.mark.parametrize(
    "name, share", [(n, s) for n in SAMPLERS for s in ("module", "stage") if (n, s) != ("gp", "module")]
)
def test_every_sampler_searches_both_spaces_with_two_workers(name: str, share: str) -> None:
    cfg = Config()
    cfg = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, sampler=name, n_startup_trials=4))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=_sampler(cfg, 0))
    study.optimize(_objective(share), n_trials=8, n_jobs=2)
    trials = study.get_trials()
    assert len(trials) == 8 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # proposals, not one network again: after the 4 random start-up trials, two threads asking
    # at once on the same history may get the same proposal, at most once per pair of asks
    assert len({tuple(sorted(t.params.items())) for t in trials}) >= 8 - (8 - 4) // 2


def test_tpe_multivariate_models_groups_jointly_and_keeps_workers_apart() -> None:
    cfg = Config()
    cfg = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, sampler="tpe-multivariate"))
    sampler = _sampler(cfg, 0)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._multivariate and sampler._group and sampler._constant_liar


def test_a_sqlite_transaction_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    """Optuna claims a WAITING trial by a read then a write in one transaction (SELECT ... FOR
    UPDATE, which SQLite ignores); with BEGIN IMMEDIATE no other process can write between the
    two, so two workers never both take the same retry or the same hand design."""
    import sqlite3

    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    optuna.create_study(storage=storage, study_name="locks")
    other = sqlite3.connect(tmp_path / "study.db", timeout=0.05, isolation_level=None)
    with storage.engine.connect() as connection, connection.begin():
        connection.exec_driver_sql("SELECT 1")  # a read, as the claim starts
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")  # another process may not start writing meanwhile
    other.execute("BEGIN IMMEDIATE")  # once it ends, it may
    other.execute("ROLLBACK")
    other.close()
    storage.engine.dispose()
