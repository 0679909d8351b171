"""`inception-benchmark` (`python -m search.apps.benchmark [size=quick|default|full]`): the Hydra
app over conf/benchmark.yaml; the protocol itself is search.experiments.benchmark."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from search.apps.checks import check_benchmark
from search.apps.cli import CONF_DIR, run_checked, run_in_output_dir, start_up_check
from search.config.benchmark import BenchmarkConfig, register_benchmark
from search.data.sources import register
from search.experiments.benchmark import run_benchmark

__all__ = ["main"]


def _benchmark(cfg: BenchmarkConfig, directory: Path) -> str:
    run_benchmark(cfg, directory)
    return f"benchmark {cfg.benchmark.name}: {directory / 'report.md'}"


@hydra.main(config_path=str(CONF_DIR), config_name="benchmark", version_base="1.3")
def _app(dcfg: DictConfig) -> None:
    run_in_output_dir(dcfg, check_benchmark, _benchmark)


def main() -> None:
    register()
    register_benchmark()
    run_checked(
        start_up_check("benchmark", check_benchmark, lambda cfg: ("study.results_dir", cfg.study.results_dir)), _app
    )


if __name__ == "__main__":
    main()
