"""`python -m search [overrides]` (or `inception-search`): the budget-constrained search.

A Hydra app over `conf/search.yaml`. Before Hydra starts, the overrides are composed once (the
first value of each sweep) and validated, so every user error, Hydra's included, is one line
naming the field and the value, with exit code 2 and no traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from search.config import Config, ConfigError, register, validate

__all__ = ["main"]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
log = logging.getLogger("search")


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _hydra_message(err: Exception) -> str:
    """Hydra/OmegaConf errors in one line: the message's first line and the full key."""
    text = str(err).strip()
    cause = err.__cause__ or err.__context__
    if cause is not None and "full_key" in str(cause):
        text = str(cause).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    key = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("full_key:")), None)
    first = lines[0] if lines else err.__class__.__name__
    return f"{key}: {first}" if key and key not in first else first


def _to_config(cfg: DictConfig) -> Config:
    from omegaconf.errors import MissingMandatoryValue

    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except MissingMandatoryValue as err:
        key = getattr(err, "full_key", None) or "?"
        raise ConfigError(f"{key}=???: must be set (e.g. {key}=<value> on the command line)") from None


def precheck(overrides: list[str]) -> Config:
    """Compose and validate what Hydra will run; raise ConfigError with one line."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [a for a in overrides if a not in ("-m", "--multirun")]
    if any(a.startswith("-") for a in args):
        return Config()  # --help, --cfg and friends: leave them to Hydra
    try:
        parsed = OverridesParser.create().parse_overrides(args)
        first = []
        for o in parsed:
            if o.is_hydra_override() or o.key_or_group.startswith("hydra"):
                continue
            if o.is_sweep_override():
                value = next(iter(o.sweep_string_iterator()))
                first.append(f"{o.get_key_element()}={value}")
            else:
                first.append(o.input_line)
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            composed = compose("search", overrides=first)
    except Exception as err:
        raise ConfigError(_hydra_message(err)) from None
    finally:
        GlobalHydra.instance().clear()
    cfg = _to_config(composed)
    validate(cfg)
    _check_writable("study.results_dir", Path(cfg.study.results_dir))
    return cfg


def _check_writable(name: str, path: Path) -> None:
    """The nearest existing folder on the way to `path` must be writable (before Hydra mkdirs)."""
    existing = path.expanduser().resolve()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{name}={str(path)!r}: not writable ({existing} is {'not a folder' if not existing.is_dir() else 'read-only'})")


@hydra.main(config_path=str(CONF_DIR), config_name="search", version_base="1.3")
def _app(dcfg: DictConfig) -> float | None:
    from search.study import run_study

    try:  # each multirun job is checked too: precheck saw only the first value of each sweep
        cfg = _to_config(dcfg)
        validate(cfg)
    except ConfigError as err:
        _error(str(err))
    hc = HydraConfig.get()
    directory = Path(hc.runtime.output_dir)
    name = cfg.study.name
    if hc.mode == RunMode.MULTIRUN:
        name = f"{cfg.study.name}/{hc.job.override_dirname or hc.job.num}"
    try:
        result = run_study(cfg, name, directory)
    except ConfigError as err:  # found while running: data contents, storage, a resumed study
        _error(str(err))
    best = result.best_trial
    if best is None:
        print(f"study {name}: no trained trial fits the budget yet; see {directory / 'report.md'}")
        return None
    test = f"{result.test_accuracy:.4f}" if result.test_accuracy is not None else "not measured"
    print(
        f"study {name}: best trial #{best.number} ({best.user_attrs['key']}, "
        f"{best.user_attrs['macs']:,} MACs): val {best.value:.4f}, test {test}; results in {directory}"
    )
    return best.value


def main() -> None:
    register()
    try:
        precheck(sys.argv[1:])
    except ConfigError as err:
        _error(str(err))
    _app()


if __name__ == "__main__":
    main()
