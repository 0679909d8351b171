"""The data sources: `data=<name>` picks one. A source is a module of this package holding its
config class (a DataConfig whose `name` is `data=<name>`, with the checks of its own fields) and
`SOURCES`, what search/data/source.py calls a source; every module here is found by itself
(modules starting with `_` are helpers), so adding a source is its module plus its
conf/data/<name>.yaml.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from search.config import schema
from search.config.schema import ConfigError, DataConfig, source_name
from search.data.source import Source
from search.data.splits import Splits

__all__ = ["SOURCES", "data_config", "load_data", "register"]


def _found() -> tuple[Source, ...]:
    modules = (
        importlib.import_module(f"{__name__}.{module.name}")
        for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
        if not module.name.startswith("_")
    )
    return tuple(source for module in modules for source in module.SOURCES)


SOURCES: dict[str, Source] = {source_name(source.config): source for source in _found()}  # data=<name>


def data_config(name: str, **fields: Any) -> DataConfig:
    """The config of data source `name` (the API's way to say `data=<name> data.<field>=...`)."""
    if name not in SOURCES:
        raise ConfigError(f"data={name!r}: must be one of {', '.join(SOURCES)}")
    return SOURCES[name].config(**fields)


def load_data(cfg: DataConfig) -> Splits:
    """The splits of `cfg`'s source: split by `cfg.seed`, resized, normalised with the train
    split's channel statistics."""
    cfg.check()
    return SOURCES[cfg.name].load(cfg)


def register() -> None:
    """The configs' schemas in Hydra's ConfigStore, each source's among them (what every
    command's main() does first)."""
    schema.register(source.config for source in SOURCES.values())
