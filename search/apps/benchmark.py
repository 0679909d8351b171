"""`inception-benchmark` (`python -m search.apps.benchmark [size=quick|default|full]`): the Hydra
app over conf/benchmark.yaml; the protocol itself is search.experiments.benchmark."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from search.apps.checks import check_benchmark
from search.apps.cli import CONF_DIR, check_outputs, checked_config, compose_checked, error, run_checked, to_config
from search.config.benchmark import BenchmarkConfig, register_benchmark
from search.config.schema import ConfigError, register
from search.experiments.benchmark import run_benchmark

__all__ = ["main"]


@hydra.main(config_path=str(CONF_DIR), config_name="benchmark", version_base="1.3")
def _app(dcfg: DictConfig) -> None:
    cfg: BenchmarkConfig = checked_config(dcfg, check_benchmark)
    directory = Path(HydraConfig.get().runtime.output_dir)
    try:
        run_benchmark(cfg, directory)
    except ConfigError as err:
        error(str(err))
    print(f"benchmark {cfg.benchmark.name}: {directory / 'report.md'}")


def main() -> None:
    register()
    register_benchmark()

    def precheck(overrides: list[str]) -> None:
        composed = compose_checked("benchmark", overrides)
        if composed is not None:
            cfg = to_config(composed)
            check_benchmark(cfg)
            check_outputs("study.results_dir", cfg.study.results_dir, cfg.logger)

    run_checked(precheck, _app)


if __name__ == "__main__":
    main()
