"""SIGTERM's and Ctrl-C's two faces: during training a flag the trainer checks between
batches, elsewhere an immediate PoliteStop; a second signal stops at once (StopNow), except
inside a held block, which it waits out."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from search.training import interrupt


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupt.install()
    yield
    interrupt.install()  # no stop left requested for the next test
    for number, handler in handlers.items():
        signal.signal(number, handler)


@pytest.mark.parametrize("first, code, name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_during_training_the_first_signal_waits_for_the_next_batch_and_a_second_stops_at_once(
    first: int, code: int, name: str
) -> None:
    with interrupt.deferred():
        interrupt._on_signal(first, None)  # only the flag
        assert interrupt.requested()
        with pytest.raises(interrupt.PoliteStop, match=f"stopped by {name}"):
            interrupt.check()  # the trainer, between two batches
        with pytest.raises(interrupt.StopNow) as stopped:
            interrupt._on_signal(signal.SIGINT, None)  # the second, of either kind
    assert stopped.value.code == interrupt.exit_code() == code  # the first signal's code
    assert isinstance(stopped.value, SystemExit) and f"second {name}" in str(stopped.value)


def test_between_trials_a_signal_stops_at_once() -> None:
    with pytest.raises(interrupt.PoliteStop, match=r"^stopped by Ctrl-C \(SIGINT\)$"):
        interrupt._on_signal(signal.SIGINT, None)
    assert interrupt.requested()  # and any later check stops too


def test_a_second_signal_waits_out_a_held_block() -> None:
    with pytest.raises(interrupt.PoliteStop):
        interrupt._on_signal(signal.SIGTERM, None)
    done = []
    with pytest.raises(interrupt.StopNow) as stopped, interrupt.held():
        interrupt._on_signal(signal.SIGINT, None)  # a second signal inside: recorded, not raised
        done.append("both writes")
    assert done == ["both writes"] and stopped.value.code == 143


def test_install_starts_with_no_stop_requested() -> None:
    with pytest.raises(interrupt.PoliteStop):
        interrupt._on_signal(signal.SIGINT, None)
    interrupt.install()
    assert not interrupt.requested()
    interrupt.check()  # no stop: returns


def test_a_real_ctrl_c_reaches_the_handler() -> None:
    import os
    import time

    with pytest.raises(interrupt.PoliteStop, match="Ctrl-C"):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # interrupted: the handler runs before this returns


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
            interrupt._on_signal(signal.SIGTERM, None)  # inside deferred(): only the flag
        original()

    monkeypatch.setattr(interrupt, "check", counting)
    model = space.build_model(base_genotype(cfg.space.base, cfg.space.genotype, data))
    with pytest.raises(interrupt.PoliteStop):
        trainer.fit(model, aux_weight=0.0)
    assert len(batches) == 4
