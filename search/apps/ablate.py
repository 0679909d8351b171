"""`inception-ablate` (`python -m search.apps.ablate experiment=reductions|aux|...`) and
`inception-compare`: the Hydra apps over conf/ablate.yaml and conf/compare.yaml. The command line
is checked first (one line, exit 2); the experiment itself is search.experiments.ablate.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from search.apps.checks import check_ablate
from search.apps.cli import CONF_DIR, check_outputs, checked_config, compose_checked, error, run_checked, to_config
from search.config.ablate import AblateConfig, register_ablate
from search.config.schema import ConfigError, register
from search.experiments.ablate import run_experiment

__all__ = ["main"]


def _app_body(dcfg: DictConfig) -> None:
    cfg: AblateConfig = checked_config(dcfg, check_ablate)
    directory = Path(HydraConfig.get().runtime.output_dir)
    try:
        run_experiment(cfg, directory)
    except ConfigError as err:
        error(str(err))
    print(f"experiment {cfg.experiment.name}: {directory / 'report.md'}")


@hydra.main(config_path=str(CONF_DIR), config_name="ablate", version_base="1.3")
def _ablate(dcfg: DictConfig) -> None:
    _app_body(dcfg)


@hydra.main(config_path=str(CONF_DIR), config_name="compare", version_base="1.3")
def _compare(dcfg: DictConfig) -> None:
    _app_body(dcfg)


def main(config_name: str = "ablate") -> None:
    register()
    register_ablate()

    def precheck(overrides: list[str]) -> None:
        composed = compose_checked(config_name, overrides)
        if composed is not None:
            cfg = to_config(composed)
            check_ablate(cfg)
            check_outputs("results_dir", cfg.results_dir, cfg.logger)

    run_checked(precheck, _compare if config_name == "compare" else _ablate)


if __name__ == "__main__":
    main()
