"""`search.params`: training and data settings searched beside the architecture, written as Hydra
sweeps (`train.lr: tag(log, interval(0.01, 0.2))`, `train.batch_size: choice(32, 64, 128)`).

Each expression is parsed by Hydra's own override parser, so `choice`, `range`, `interval`,
`tag(log, ...)` and `a,b,c` mean here what they mean in any Hydra sweep (one exception, kept on
purpose: a `range` stops before its end, as in Hydra and Python, where hydra-optuna-sweeper
includes it). Each entry is checked against the dataclass field it sets and against
`validate_common`, at every value it can take, before anything runs; then each trial draws it
through the same `Draw` as the architecture, under the config key as its Optuna parameter name,
into that trial's own copy of the config.

Only keys that change how one network is trained may be searched: what defines the study (its
data set and validation split, budget, space, name, storage) or only how a run executes
(device, loader workers) is refused with the reason.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from search.config.common import validate_common
from search.config.schema import EXECUTION_FIELDS, Config, ConfigError
from space.ranges import Draw

__all__ = [
    "SearchedParam",
    "apply_values",
    "as_overrides",
    "config_values",
    "draw_values",
    "parse_params",
    "short_value",
]

# The data fields a trial may change: how its training images are augmented. Every other one
# fixes which images a study trains and validates on, or how they are loaded.
TRIAL_DATA_FIELDS = ("augment", "augmentation", "photometric")

_DATA_REASONS = {
    ("name", "path"): "is the data set: a study trains and validates on one",
    (
        "seed",
        "val_fraction",
        "test_fraction",
        "limit",
        "subset",
    ): "fixes the images every trial is validated on, so trials stay comparable",
    (
        "resolution",
        "channels",
        "labels",
        "n_classes",
        "n_samples",
        "size",
    ): "changes the task (its images or classes), not how a network trains",
    ("cache", "workers"): "says how images are loaded, not what a network sees",
}
_GROUP_REASONS = {
    "budget": "is the budget every trial is held to (one study per budget: -m budget.macs=1e6,2e6)",
    "space": "is the architecture space, which the sampler searches already (widen it with the space.* ranges)",
    "study": "names the study",
    "search": "configures the search itself",
    "logger": "says how runs are logged, not what they compute",
    "progress": "says how runs are logged, not what they compute",
    "model": "is lightning-hydra-template's network; here the architecture is the space the sampler searches (space.*)",
}
# lightning-hydra-template's names for what is called otherwise here: named in the error.
_LHT_NAMES = {
    "model.optimizer.lr": "train.lr",
    "model.optimizer.weight_decay": "train.weight_decay",
    "model.optimizer.momentum": "train.momentum",
    "data.batch_size": "train.batch_size",
    "datamodule.batch_size": "train.batch_size",
    "trainer.max_epochs": "train.epochs",
}


@dataclass(frozen=True)
class SearchedParam:
    """One searched key and the distribution its values are drawn from."""

    key: str  # the config key, also the Optuna parameter name: "train.lr"
    kind: Literal["float", "int", "choice"]
    low: float = 0.0
    high: float = 0.0
    step: int = 1
    log: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def expression(self) -> str:
        """The canonical Hydra form: what a study stores and compares on resume."""
        if self.kind == "choice":
            return f"choice({', '.join(_literal(c) for c in self.choices)})"
        if self.kind == "int" and not self.log:
            return f"range({int(self.low)}, {int(self.high) + self.step}, {self.step})"
        text = f"interval({_literal(self.low)}, {_literal(self.high)})"
        return f"tag(log, {text})" if self.log else text

    def draw(self, draw: Draw) -> Any:
        if self.kind == "choice":
            return draw.choice(self.key, self.choices)
        if self.kind == "int":
            return draw.int(self.key, int(self.low), int(self.high), self.step, log=self.log)
        return draw.float(self.key, self.low, self.high, log=self.log)

    def extremes(self) -> tuple[Any, ...]:
        """The values validation must accept: every choice, or both ends."""
        if self.kind == "choice":
            return self.choices
        cast = int if self.kind == "int" else float
        return cast(self.low), cast(self.high)


def _literal(value: Any) -> str:
    """A value as Hydra writes it: true/false, and floats in full (`repr`: 1e-05, 0.2)."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys whichever way they were written: `train.lr: ...` in YAML, or the nested
    `train: {lr: ...}` a command-line `+search.params.train.lr=...` makes (which wins)."""
    flat: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            nested.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return {**flat, **nested}


def _field_type(cfg: Config, key: str) -> type:
    """The type of the dataclass field `key` sets, or a ConfigError saying why it cannot be searched."""
    if key in _LHT_NAMES:  # none of them is a key here
        raise ConfigError(f"lightning-hydra-template's {key} is {_LHT_NAMES[key]} here")
    group, _, name = key.partition(".")
    section = getattr(cfg, group, None) if group in ("train", "data") else None
    if section is None:
        raise ConfigError(
            _GROUP_REASONS.get(group, "not a key of this config; train.* and data.* keys can be searched")
        )
    hints = typing.get_type_hints(type(section))
    if name not in hints:
        owner = f"data={cfg.data.name}" if group == "data" else "train"
        fields = ", ".join(f.name for f in dataclasses.fields(section))
        raise ConfigError(f"not a field of {owner} (its fields: {fields})")
    if group == "train" and name in EXECUTION_FIELDS:
        raise ConfigError("says how a run executes, not what it computes")
    if key == "train.seed":
        raise ConfigError(
            "a seed is not a hyperparameter: searching it picks lucky runs (the benchmark repeats seeds instead)"
        )
    if group == "data" and name not in TRIAL_DATA_FIELDS:
        raise ConfigError(next(why for names, why in _DATA_REASONS.items() if name in names))
    hint = hints[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # Optional[X]: X
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _typed(value: Any, kind: type) -> Any:
    """`value` as the field's type, or None when it is not one."""
    if kind is bool:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if kind is int:
        return value if isinstance(value, int) else None
    if kind is float:
        return float(value) if isinstance(value, (int, float)) else None
    if kind is str:
        return value if isinstance(value, str) else None
    return None


def _parse_one(key: str, expression: str, kind: type) -> SearchedParam:
    """The distribution of one entry; a ConfigError (the reason only) when it is not one."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from hydra.errors import HydraException

    try:
        override = OverridesParser.create().parse_override(f"x={expression}")
    except HydraException as err:
        raise ConfigError(f"not a Hydra sweep expression ({str(err).splitlines()[0][:120]})") from None
    if not override.is_sweep_override():
        raise ConfigError(
            f"one value, not a sweep: set {key}={expression} instead, or write choice(...), range(...) or interval(...)"
        )
    sweep = override.value()
    tags = set(sweep.tags)
    if tags - {"log"}:
        raise ConfigError(f"tag {', '.join(sorted(tags - {'log'}))}: only log changes how a value is drawn")
    log = "log" in tags
    type_name = kind.__name__ if isinstance(kind, type) else str(kind)
    if kind not in (bool, int, float, str):
        raise ConfigError(f"a {type_name} field cannot be searched")
    if isinstance(sweep, IntervalSweep):
        if kind not in (int, float):
            raise ConfigError(f"an interval needs a number field; {key} is a {type_name}")
        low, high = float(sweep.start), float(sweep.end)
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ConfigError("an interval needs finite low <= high")
        if log and low <= 0:
            raise ConfigError("a log interval needs low > 0")
        if kind is int:
            if not (low.is_integer() and high.is_integer()):
                raise ConfigError(f"{key} is an int: an interval of it needs whole ends")
            return SearchedParam(key, "int", low=int(low), high=int(high), log=log)
        return SearchedParam(key, "float", low=low, high=high, log=log)
    values = list(override.sweep_iterator())
    if not values:
        raise ConfigError("holds no value")
    typed = []
    for value in values:
        if _typed(value, kind) is None:
            raise ConfigError(
                f"{_literal(value)} is not {'an' if type_name == 'int' else 'a'} {type_name}, the type of {key}"
            )
        typed.append(_typed(value, kind))
    if isinstance(sweep, RangeSweep) and kind is int:
        step = abs(int(sweep.step))
        if log and step != 1:
            raise ConfigError("a log range needs step 1 (Optuna draws log integers one by one)")
        return SearchedParam(key, "int", low=min(typed), high=max(typed), step=step, log=log)
    if log:
        raise ConfigError(
            f"tag log needs an interval{' or an int range' if kind is int else ''}, "
            f"not a {type(sweep).__name__.removesuffix('Sweep').lower()}"
        )
    assert isinstance(sweep, (ChoiceSweep, RangeSweep))
    if isinstance(sweep, RangeSweep):  # a float range: its values as choices, without the float steps' dust
        typed = [float(f"{v:.12g}") if isinstance(v, float) else v for v in typed]
    return SearchedParam(key, "choice", choices=tuple(typed))


def parse_params(cfg: Config) -> tuple[SearchedParam, ...]:
    """`cfg.search.params` as distributions, sorted by key; null entries are not searched. Every
    value each can take is validated with the rest of `cfg`; a ConfigError names key and expression."""
    searched = []
    for key, expression in sorted(_flatten(cfg.search.params).items()):
        if expression is None:
            continue
        shown = f"search.params.{key}={expression!r}"
        if not isinstance(expression, str):
            raise ConfigError(
                f"{shown}: a sweep expression is a string, e.g. choice(32, 64) or tag(log, interval(0.001, 0.1))"
            )
        try:
            param = _parse_one(key, expression, _field_type(cfg, key))
            for value in param.extremes():
                trial = apply_values(cfg, {key: value})
                validate_common(data=trial.data, train=trial.train, logger=trial.logger)
        except ConfigError as err:
            raise ConfigError(f"{shown}: {err}") from None
        searched.append(param)
    return tuple(searched)


def draw_values(draw: Draw, params: Sequence[SearchedParam]) -> dict[str, Any]:
    """One trial's values of every searched key."""
    return {p.key: p.draw(draw) for p in params}


def config_values(cfg: Config, params: Sequence[SearchedParam]) -> dict[str, Any]:
    """The configured values of the searched keys: what the hand design (warm start) trains with."""
    return {p.key: getattr(getattr(cfg, p.key.split(".")[0]), p.key.split(".", 1)[1]) for p in params}


def apply_values(cfg: Config, values: Mapping[str, Any]) -> Config:
    """A copy of `cfg` with `values` ({"train.lr": 0.03, ...}) set: one trial's own config."""
    sections: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        group, name = key.split(".", 1)
        sections.setdefault(group, {})[name] = value
    return dataclasses.replace(cfg, **{g: dataclasses.replace(getattr(cfg, g), **f) for g, f in sections.items()})


def short_value(value: Any) -> str:
    """A value for reports and logs: floats to 4 significant digits, booleans as Hydra writes them."""
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def as_overrides(values: Mapping[str, Any]) -> str:
    """Values as the command-line overrides that set them: `train.batch_size=64 train.lr=0.031`."""
    return " ".join(f"{key}={short_value(value)}" for key, value in sorted(values.items()))
