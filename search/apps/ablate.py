"""`inception-ablate` (`python -m search.apps.ablate experiment=reductions|aux|...`) and
`inception-compare`: the Hydra apps over conf/ablate.yaml and conf/compare.yaml. The command line
is checked first (one line, exit 2); the experiment itself is search.experiments.ablate.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from search.apps.checks import check_ablate
from search.apps.cli import CONF_DIR, run_checked, run_in_output_dir, start_up_check
from search.config.ablate import AblateConfig, register_ablate
from search.data.sources import register
from search.experiments.ablate import run_experiment

__all__ = ["main"]


def _experiment(cfg: AblateConfig, directory: Path) -> str:
    run_experiment(cfg, directory)
    return f"experiment {cfg.experiment.name}: {directory / 'report.md'}"


@hydra.main(config_path=str(CONF_DIR), config_name="ablate", version_base="1.3")
def _ablate(dcfg: DictConfig) -> None:
    run_in_output_dir(dcfg, check_ablate, _experiment)


@hydra.main(config_path=str(CONF_DIR), config_name="compare", version_base="1.3")
def _compare(dcfg: DictConfig) -> None:
    run_in_output_dir(dcfg, check_ablate, _experiment)


def main(config_name: str = "ablate") -> None:
    register()
    register_ablate()
    precheck = start_up_check(config_name, check_ablate, lambda cfg: ("results_dir", cfg.results_dir))
    run_checked(precheck, _compare if config_name == "compare" else _ablate)


if __name__ == "__main__":
    main()
