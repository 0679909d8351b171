"""The value checks every command shares (data, training, logging), and the one-line failure
they raise: `field=value: why`."""

from __future__ import annotations

import re
from typing import Any

from search.config.schema import (
    DATA_CONFIGS,
    LOGGERS,
    SCHEDULES,
    WANDB_MODES,
    Cifar100Data,
    ConfigError,
    DataConfig,
    FolderData,
    LoggerConfig,
    TrainConfig,
)

__all__ = ["fail", "one_of", "positive", "validate_common"]


def fail(name: str, value: Any, why: str) -> None:
    raise ConfigError(f"{name}={value!r}: {why}")


def one_of(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        fail(name, value, f"must be one of {', '.join(choices)}")


def positive(name: str, value: float) -> None:
    if not value > 0:
        fail(name, value, "must be > 0")


def _device(name: str, value: str) -> None:
    """The form of a device name; whether that device exists here is a start-up check
    (search.apps.checks)."""
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        fail(name, value, "must be auto, cpu, cuda, cuda:<index> or mps")


def validate_common(*, data: DataConfig, train: TrainConfig, logger: LoggerConfig) -> None:
    """The checks every entry point shares: data, training and logging."""
    d = data
    one_of("data.name", d.name, tuple(DATA_CONFIGS))
    if type(d) is not DATA_CONFIGS[d.name]:
        fail(
            "data.name",
            d.name,
            f"choose the source with data={d.name} (the group; data.name alone keeps the fields of {type(d).__name__})",
        )
    hint = getattr(type(d), "path_hint", None)  # the sources whose data.path is required
    if hint is not None and not getattr(d, "path", None):
        fail("data.path", None, f"data={d.name} needs data.path=<{hint}>")
    if isinstance(d, Cifar100Data):
        one_of("data.labels", d.labels, ("fine", "coarse"))
    if isinstance(d, FolderData):
        one_of("data.augmentation", d.augmentation, ("paper", "light", "off"))
        if d.channels not in (1, 3):
            fail("data.channels", d.channels, "must be 1 (grey) or 3 (RGB)")
        if d.resolution is None:
            fail("data.resolution", None, "data=folder needs a crop size (e.g. 224, 64)")
        if d.workers is not None and d.workers < 0:
            fail("data.workers", d.workers, "must be >= 0 (0: load in the training process) or null (one per core)")
    if d.resolution is not None:
        positive("data.resolution", d.resolution)
    test_fraction = getattr(d, "test_fraction", None)  # sources without an official test split
    for name, value in (("val_fraction", d.val_fraction), ("test_fraction", test_fraction)):
        if value is not None and not 0 < value < 1:
            fail(f"data.{name}", value, "must be in (0, 1)")
    if test_fraction is not None and d.val_fraction + test_fraction >= 1:
        fail("data.test_fraction", test_fraction, f"leaves no training data beside data.val_fraction={d.val_fraction}")
    if d.limit is not None:
        positive("data.limit", d.limit)
    if d.subset is not None and d.subset < 10:
        fail("data.subset", d.subset, "must be >= 10 (or null: all images)")
    t = train
    positive("train.epochs", t.epochs)
    if not 0 <= t.momentum < 1:
        fail("train.momentum", t.momentum, "must be in [0, 1)")
    if t.threads is not None:
        positive("train.threads", t.threads)
    positive("train.batch_size", t.batch_size)
    positive("train.lr", t.lr)
    if t.weight_decay < 0:
        fail("train.weight_decay", t.weight_decay, "must be >= 0")
    one_of("train.schedule", t.schedule, SCHEDULES)
    if t.polyak is not None and not 0 < t.polyak < 1:
        fail("train.polyak", t.polyak, "must be in (0, 1) or null")
    positive("train.decay_every", t.decay_every)
    if not 0 < t.lr_decay <= 1:
        fail("train.lr_decay", t.lr_decay, "must be in (0, 1]")
    _device("train.device", t.device)
    one_of("train.channels_last", str(t.channels_last).lower(), ("auto", "true", "false"))
    one_of("logger.name", logger.name, LOGGERS)
    one_of("logger.mode", logger.mode, WANDB_MODES)
