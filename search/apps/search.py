"""`python -m search [overrides]` (or `inception-search`): the budget-constrained search.

A Hydra app over `conf/search.yaml`. Before Hydra starts, the overrides are composed once (the
first value of each sweep) and validated, so every user error, Hydra's included, is one line
naming the field and the value, with exit code 2 and no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from search.apps.checks import check_search
from search.apps.cli import CONF_DIR, checked_config, error, run_checked, start_up_check
from search.config.credentials import mask_credentials, mask_file
from search.config.schema import Config, ConfigError
from search.data.sources import register
from search.experiments.run import run_study
from search.optimize.confirm import mean_and_spread
from search.optimize.results import confirmed_summary
from search.optimize.storage import STORAGE_EXIT_CODE, StorageUnavailable
from search.training import interrupt
from search.training.interrupt import PoliteStop, StopNow

__all__ = ["main", "precheck"]


_precheck = start_up_check("search", check_search, lambda cfg: ("study.results_dir", cfg.study.results_dir))


def precheck(overrides: list[str]) -> Config:
    """Compose and check what Hydra will run; raise ConfigError with one line."""
    return _precheck(overrides) or Config()


@hydra.main(config_path=str(CONF_DIR), config_name="search", version_base="1.3")
def _app(dcfg: DictConfig) -> float | None:
    cfg: Config = checked_config(dcfg, check_search)
    hc = HydraConfig.get()
    directory = Path(hc.runtime.output_dir)
    sys.argv[:] = [mask_credentials(arg) for arg in sys.argv]  # Hydra is done with it; W&B records it
    _mask_saved_config(directory / str(hc.output_subdir), Path(hc.sweep.dir))
    name = cfg.study.name
    if hc.mode == RunMode.MULTIRUN:
        if hc.job.override_dirname:  # one study per combination of swept settings
            name = f"{cfg.study.name}/{hc.job.override_dirname}"
        else:  # jobs that differ only in excluded keys (search.worker, ...) are workers of one study
            directory = Path(hc.sweep.dir)
    try:
        result = run_study(cfg, name, directory)
    except ConfigError as err:  # found while running: data contents, storage, a resumed study
        error(str(err))
    except StorageUnavailable as err:  # down past search.storage_patience; nothing recorded is lost
        error(str(err), code=STORAGE_EXIT_CODE)
    except (PoliteStop, StopNow) as stop:  # SIGTERM or Ctrl-C: the trial in flight saved and handed back
        print(f"study {name}: {stop}", file=sys.stderr)
        sys.exit(interrupt.exit_code())
    except RuntimeError as err:  # a local worker failed; the study and its reports are saved
        error(str(err), code=1)
    best = result.best_trial
    if best is None:
        print(f"study {name}: no trained trial fits the budget yet; see {directory / 'report.md'}")
        return None
    test = f"{result.test_accuracy:.4f}" if result.test_accuracy is not None else "not measured"
    summary = confirmed_summary(result.study)
    confirmed = summary["values"].get(str(best.number)) if summary is not None else None
    value = (
        f"confirmed val {mean_and_spread(confirmed)[0]:.4f} over {len(confirmed)} seeds (search value {best.value:.4f})"
        if confirmed
        else f"val {best.value:.4f}"
    )
    print(
        f"study {name}: best trial #{best.number} ({best.user_attrs['key']}, "
        f"{best.user_attrs['macs']:,} MACs): {value}, test {test}; results in {directory}"
    )
    return best.value


def _mask_saved_config(hydra_dir: Path, sweep_dir: Path) -> None:
    """Hydra saves the overrides and config as typed: mask storage credentials in them."""
    for path in [*hydra_dir.glob("*.yaml"), sweep_dir / "multirun.yaml"]:
        mask_file(path)


def main() -> None:
    register()
    run_checked(precheck, _app)


if __name__ == "__main__":
    main()
