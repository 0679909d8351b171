"""SIGTERM's two faces: during training a flag the trainer checks between batches, elsewhere an
immediate PoliteStop; a second SIGTERM exits at once."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from search.training import interrupt


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    interrupt._requested.clear()
    yield
    interrupt._requested.clear()


def test_during_training_the_first_sigterm_waits_for_the_next_batch_and_a_second_exits() -> None:
    with interrupt.deferred():
        interrupt._on_sigterm(signal.SIGTERM, None)  # only the flag
        assert interrupt.requested()
        with pytest.raises(interrupt.PoliteStop):
            interrupt.check()  # the trainer, between two batches
        with pytest.raises(SystemExit) as exited:
            interrupt._on_sigterm(signal.SIGTERM, None)
    assert exited.value.code == interrupt.EXIT_CODE == 143


def test_between_trials_sigterm_stops_at_once() -> None:
    with pytest.raises(interrupt.PoliteStop):
        interrupt._on_sigterm(signal.SIGTERM, None)
    assert interrupt.requested()  # and any later check stops too


def test_the_trainer_stops_between_batches_once_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fit asked to stop during its second batch raises PoliteStop at the next check, and not
    before: the checks are the fit's entry and one before each batch."""
    import space
    from search.config.schema import Config, TrainConfig
    from search.data.sources import data_config, load_data
    from search.data.splits import base_genotype
    from search.training.trainer import Trainer

    data = load_data(data_config("synthetic", n_samples=128))
    cfg = Config(data=data_config("synthetic"))
    trainer = Trainer(TrainConfig(epochs=2, batch_size=16, threads=1), data)
    batches = []
    original = interrupt.check

    def counting() -> None:
        batches.append(1)
        if len(batches) == 4:  # entry, batch 1, batch 2, then the check before batch 3
            interrupt._requested.set()
        original()

    monkeypatch.setattr(interrupt, "check", counting)
    model = space.build_model(base_genotype(cfg.space.base, cfg.space.genotype, data))
    with pytest.raises(interrupt.PoliteStop):
        trainer.fit(model, aux_weight=0.0)
    assert len(batches) == 4
