"""The data sources, registered once: `data=<name>` picks one. A source is a module of this
package with its config class, `load` and `class_names` (search/data/source.py); adding one
touches its module, this dict, its config class and its conf/data/<name>.yaml.
"""

from __future__ import annotations

from search.config.schema import DataConfig
from search.data.source import Source
from search.data.sources import cifar, digits, fashion_mnist, folder, npz, synthetic
from search.data.splits import Splits

__all__ = ["SOURCES", "load_data"]

SOURCES: dict[str, Source] = {
    "fashion-mnist": fashion_mnist.SOURCE,
    "digits": digits.SOURCE,
    "synthetic": synthetic.SOURCE,
    "cifar10": cifar.CIFAR10,
    "npz": npz.SOURCE,
    "cifar100": cifar.CIFAR100,
    "folder": folder.SOURCE,
}


def load_data(cfg: DataConfig) -> Splits:
    """The splits of `cfg`'s source: split by `cfg.seed`, resized, normalised with the train
    split's channel statistics."""
    return SOURCES[cfg.name].load(cfg)
