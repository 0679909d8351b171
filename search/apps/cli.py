"""What the command-line entry points share: composing and checking a Hydra config up front, and
turning every user error into one line (`error: field=value: why`, exit code 2)."""

from __future__ import annotations

import dataclasses
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import search.config.ablate as ablate_config
import search.config.benchmark as benchmark_config
import search.config.schema as config
from search.config.credentials import mask_credentials
from search.config.schema import ConfigError
from search.data.sources import SOURCES
from search.training import interrupt

__all__ = [
    "CONF_DIR",
    "run_in_output_dir",
    "start_up_check",
    "check_outputs",
    "check_writable",
    "checked_config",
    "compose_checked",
    "error",
    "run_checked",
    "to_config",
]


def _conf_dir() -> Path:
    """The Hydra configs: `search/conf` in an installed wheel (pyproject maps conf/ there), else
    the checkout's top-level `conf/` (source tree, editable install)."""
    package = Path(__file__).resolve().parents[1]  # search/
    packaged = package / "conf"
    return packaged if (packaged / "search.yaml").is_file() else package.parent / "conf"


CONF_DIR = _conf_dir()


def error(message: str, code: int = 2) -> None:
    """One line on stderr, credentials masked, and exit (2: bad input; 1: a failed run)."""
    print(f"error: {mask_credentials(message)}", file=sys.stderr)
    sys.exit(code)


def run_checked(precheck: Callable[[list[str]], Any], app: Callable[[], Any]) -> None:
    """The shape of every entry point: check the command line as Hydra will run it (one line and
    exit code 2 on a bad input, before anything is written), then hand it to the Hydra app.
    SIGTERM and Ctrl-C stop it politely (search/training/interrupt.py): one line, no traceback,
    exit 143 or 130; the apps say what was kept where they know."""
    interrupt.install()
    try:
        try:
            precheck(sys.argv[1:])
        except ConfigError as err:
            error(str(err))
        app()
    except (interrupt.PoliteStop, interrupt.StopNow) as stop:
        print(f"{stop}; nothing was running that a wait would have kept", file=sys.stderr)
        sys.exit(interrupt.exit_code())


def start_up_check(
    config_name: str, check: Callable[[Any], None], outputs: Callable[[Any], tuple[str, str]]
) -> Callable[[list[str]], Any]:
    """The start-up check of one command: compose what Hydra will run, check its values and then
    this machine and the files it names (`check`), and that its outputs (`outputs(cfg)`: the
    field and the folder) can be written. Returns the config; None for --help and friends."""

    def precheck(overrides: list[str]) -> Any:
        composed = compose_checked(config_name, overrides)
        if composed is None:
            return None
        cfg = to_config(composed)
        check(cfg)
        check_outputs(*outputs(cfg), cfg.logger)
        return cfg

    return precheck


def run_in_output_dir(dcfg: DictConfig, check: Callable[[Any], None], run: Callable[[Any, Path], str]) -> None:
    """The body of an experiment's Hydra job: its config checked, `run(cfg, folder)` in Hydra's
    output folder (a ConfigError found while running is one line, exit 2), then the line
    `run` returns (where its report is)."""
    cfg = checked_config(dcfg, check)
    directory = Path(HydraConfig.get().runtime.output_dir)
    try:
        print(run(cfg, directory))
    except ConfigError as err:
        error(str(err))
    except (interrupt.PoliteStop, interrupt.StopNow) as stop:  # the run in flight is dropped, none finished
        print(
            f"{stop}: every finished run is kept in {directory}; the same command trains only the rest",
            file=sys.stderr,
        )
        sys.exit(interrupt.exit_code())


def checked_config(composed: DictConfig, validate: Callable[[Any], None]) -> Any:
    """The dataclass config of one Hydra job, validated; a bad value exits with one line. Each
    multirun job is checked too: the precheck saw only the first value of each sweep."""
    try:
        cfg = to_config(composed)
        validate(cfg)
    except ConfigError as err:
        error(str(err))
    return cfg


# The command each primary config of conf/ runs as (console scripts of pyproject.toml).
COMMANDS = {
    "search": "inception-search",
    "ablate": "inception-ablate",
    "compare": "inception-compare",
    "benchmark": "inception-benchmark",
    "supernet": "inception-supernet",
}


def config_groups(config_name: str) -> list[str]:
    """The config groups `conf/<config_name>.yaml` takes (its defaults list, followed through
    the primary configs it extends)."""
    import yaml

    groups: list[str] = []
    for entry in yaml.safe_load((CONF_DIR / f"{config_name}.yaml").read_text()).get("defaults", []):
        if isinstance(entry, str) and (CONF_DIR / f"{entry}.yaml").is_file():
            groups += config_groups(entry)
        elif isinstance(entry, dict):
            groups += [k.removeprefix("override ").removeprefix("optional ") for k in entry]
    return sorted(set(groups) - {"hydra"})


def _not_a_group(group: str, config_name: str) -> str:
    """Why `group=...` is refused here, and which command takes it."""
    owners = [cmd for name, cmd in COMMANDS.items() if group in config_groups(name)]
    here = f"{COMMANDS.get(config_name, config_name)} takes {', '.join(config_groups(config_name))}"
    if not owners:
        return f"{group}: no such config group ({here})"
    options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    return (
        f"{group}: not a group of {COMMANDS.get(config_name, config_name)} ({here}); "
        f"{group} belongs to {' and '.join(owners)}, e.g. `{owners[0]} {group}={options[0]}`"
    )


def _hydra_message(err: Exception, config_name: str, config_dirs: list[str]) -> str:
    """Hydra/OmegaConf errors in one line: the message's first line and the full key."""
    text = str(err).strip()
    cause = err.__cause__ or err.__context__
    if cause is not None and "full_key" in str(cause):
        text = str(cause).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    key = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("full_key:")), None)
    first = lines[0] if lines else err.__class__.__name__
    missing = re.search(r"Could not find '([\w/]+)/([^'/]+)'", first)
    if missing and (CONF_DIR / missing[1]).is_dir():  # a config group option that does not exist
        options = sorted({p.stem for d in (CONF_DIR, *map(Path, config_dirs)) for p in (d / missing[1]).glob("*.yaml")})
        return f"{missing[1]}={missing[2]}: no such option (one of {', '.join(options)})"
    foreign = re.search(r"Could not override '([\w/]+)'\. No match in the defaults list", first)
    if foreign and (CONF_DIR / foreign[1]).is_dir():
        return _not_a_group(foreign[1], config_name)
    unknown = re.search(r"Key '(\w+)' not in '(\w+)'", first)
    if unknown and key:
        return _no_such_key(key, unknown[2])
    return f"{key}: {first}" if key and key not in first else first


def _no_such_key(key: str, schema: str) -> str:
    """A key the schema lacks: name the fields it has (and, for a data source, which sources
    have the key)."""
    classes = {
        c.__name__: c
        for m in (config, ablate_config, benchmark_config)
        for c in vars(m).values()
        if isinstance(c, type) and dataclasses.is_dataclass(c)
    } | {src.config.__name__: src.config for src in SOURCES.values()}
    fields = [f.name for f in dataclasses.fields(classes[schema])] if schema in classes else []
    where = f" ({schema} has {', '.join(fields)})" if fields else ""
    source = next((name for name, src in SOURCES.items() if src.config.__name__ == schema), None)
    if source is not None:
        field = key.rsplit(".", 1)[-1]
        others = [name for name, src in SOURCES.items() if field in {f.name for f in dataclasses.fields(src.config)}]
        also = f"; data={' / data='.join(others)} take it" if others else ""
        return f"{key}: not a field of data={source} (its fields: {', '.join(fields)}){also}"
    moved = {"space.lr": "train.lr", "space.weight_decay": "train.weight_decay"}  # before search.params
    if key in moved:
        return (
            f"{key}: no such key; a searched {moved[key]} is an entry of search.params now, "
            f"e.g. search.params={{{moved[key]}:'tag(log, interval(0.01, 0.2))'}}"
        )
    return f"{key}: no such key{where}"


def to_config(cfg: DictConfig) -> Any:
    from omegaconf.errors import MissingMandatoryValue

    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except MissingMandatoryValue as err:
        key = getattr(err, "full_key", None) or "?"
        raise ConfigError(f"{key}=???: must be set (e.g. {key}=<value> on the command line)") from None


def _config_dirs(args: list[str]) -> tuple[list[str], list[str]]:
    """Hydra's `--config-dir DIR` / `-cd DIR` / `--config-dir=DIR` taken out of the arguments."""
    rest: list[str] = []
    dirs: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in ("--config-dir", "-cd"):
            dirs.append(next(it, ""))
        elif arg.startswith("--config-dir="):
            dirs.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    for d in dirs:
        if not Path(d).is_dir():
            raise ConfigError(f"--config-dir={d!r}: no such folder")
    return rest, dirs


def compose_checked(config_name: str, overrides: list[str]) -> DictConfig | None:
    """Compose `conf/<config_name>.yaml` with the first value of each sweep, as Hydra will run
    it; any Hydra/OmegaConf error becomes one ConfigError line. None for --help and friends."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args, config_dirs = _config_dirs([a for a in overrides if a not in ("-m", "--multirun")])
    if any(a.startswith("-") for a in args):
        return None  # --help, --cfg and friends: leave them to Hydra
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
        _check_experiment_owner(config_name, first, config_dirs)
        if config_dirs:  # the user's --config-dir, searched before ours as Hydra does
            first.append(f"hydra.searchpath=[{','.join('file://' + str(Path(d).resolve()) for d in config_dirs)}]")
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name, overrides=first)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(_hydra_message(err, config_name, config_dirs)) from None
    finally:
        GlobalHydra.instance().clear()


def _check_experiment_owner(config_name: str, overrides: list[str], config_dirs: list[str]) -> None:
    """conf/experiment/ holds the experiments of three commands: an ablation's or comparison's
    file sets `experiment.kind`, a search's sets none. One line when a file meets the wrong one."""
    import yaml

    if config_name not in COMMANDS or "experiment" not in config_groups(config_name):
        return
    chosen = next((o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0].lstrip("+~") == "experiment"), None)
    path = (
        next(
            (
                d / "experiment" / f"{chosen}.yaml"
                for d in (*map(Path, config_dirs), CONF_DIR)
                if (d / "experiment" / f"{chosen}.yaml").is_file()
            ),
            None,
        )
        if chosen
        else None
    )
    if path is None:
        return  # none chosen, or no such file: Hydra says so
    for_search = "experiment" not in (yaml.safe_load(path.read_text()) or {})
    if for_search != (config_name == "search"):
        owner = (
            "inception-search (it sets no experiment.kind)"
            if for_search
            else "inception-ablate and inception-compare (it sets experiment.kind)"
        )
        raise ConfigError(f"experiment={chosen}: an experiment of {owner}, not of {COMMANDS[config_name]}")


def check_outputs(results_name: str, results_dir: str, logger: Any) -> None:
    """Where results and W&B runs will be written must be writable, before anything runs."""
    check_writable(results_name, Path(results_dir))
    if logger.name == "wandb" and logger.mode != "disabled" and logger.dir:
        check_writable("logger.dir", Path(logger.dir))


def check_writable(name: str, path: Path) -> None:
    """The nearest existing folder on the way to `path` must take a new file: tried for real,
    since permission bits say nothing for root or on a read-only mount."""
    existing = path.expanduser().resolve()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{name}={str(path)!r}: not writable ({existing} is not a folder)")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise ConfigError(f"{name}={str(path)!r}: not writable ({existing}: {err.strerror or err})") from None
