"""The data sources, registered once: `data=<name>` picks one. A source is a module of this
package with its config class and `load` (search/data/source.py), keyed here by its config
class's name; adding one touches its module, this tuple, its config class and its
conf/data/<name>.yaml.
"""

from __future__ import annotations

from search.config.schema import DataConfig
from search.data.source import Source
from search.data.sources import cifar, digits, fashion_mnist, folder, npz, synthetic
from search.data.splits import Splits

__all__ = ["SOURCES", "load_data"]

_ALL: tuple[Source, ...] = (
    fashion_mnist.SOURCE,
    digits.SOURCE,
    synthetic.SOURCE,
    cifar.CIFAR10,
    npz.SOURCE,
    cifar.CIFAR100,
    folder.SOURCE,
)
SOURCES: dict[str, Source] = {source.config.name: source for source in _ALL}  # data=<name>


def load_data(cfg: DataConfig) -> Splits:
    """The splits of `cfg`'s source: split by `cfg.seed`, resized, normalised with the train
    split's channel statistics."""
    return SOURCES[cfg.name].load(cfg)
