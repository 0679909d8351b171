"""`inception-supernet` (`python -m search.apps.supernet`): train the supernet of the main job's
design space once (search.experiments.supernet), or find it trained, and say where it is.
The Hydra app over conf/supernet.yaml; the command line is checked first (one line, exit 2)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from search.apps.checks import check_supernet
from search.apps.cli import CONF_DIR, checked_config, error, run_checked, start_up_check
from search.config.schema import Config, ConfigError
from search.data.sources import register
from search.experiments.supernet import train_supernet
from search.training import interrupt

__all__ = ["main"]


@hydra.main(config_path=str(CONF_DIR), config_name="supernet", version_base="1.3")
def _app(dcfg: DictConfig) -> None:
    cfg: Config = checked_config(dcfg, check_supernet)
    try:
        trained = train_supernet(cfg)
    except ConfigError as err:
        error(str(err))
    except (interrupt.PoliteStop, interrupt.StopNow) as stop:  # the epoch in flight dropped, the last one kept
        print(str(stop), file=sys.stderr)
        sys.exit(interrupt.exit_code())
    probes = ", ".join(f"{name} {value:.4f}" for name, value in trained.history[-1].probes.items())
    how = "found trained" if trained.cached else "trained"
    epochs = f"{len(trained.history)} epoch{'s' if len(trained.history) != 1 else ''}"
    print(
        f"supernet {trained.key}: {how}, {epochs} in {trained.seconds:.0f} s; "
        f"val {probes}; weights in {trained.directory}"
    )


def main() -> None:
    register()
    run_checked(
        start_up_check("supernet", check_supernet, lambda cfg: ("study.results_dir", cfg.study.results_dir)), _app
    )


if __name__ == "__main__":
    main()
