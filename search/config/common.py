"""The value checks every command shares (data, training, logging), each a one-line
`field=value: why` (search.config.schema.fail)."""

from __future__ import annotations

import re

from search.config.schema import (
    LOGGERS,
    SCHEDULES,
    WANDB_MODES,
    DataConfig,
    LoggerConfig,
    TrainConfig,
    fail,
    one_of,
    positive,
)

__all__ = ["validate_common"]


def _device(name: str, value: str) -> None:
    """The form of a device name; whether that device exists here is a start-up check
    (search.apps.checks)."""
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        fail(name, value, "must be auto, cpu, cuda, cuda:<index> or mps")


def validate_common(*, data: DataConfig, train: TrainConfig, logger: LoggerConfig) -> None:
    """The checks every entry point shares: data, training and logging."""
    data.check()
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
