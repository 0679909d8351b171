"""The search's config checks: each value on its own, one `ConfigError` line naming the field and
the value. What needs more than the value (a file, a latency table, a proxy, a device of this
machine) is checked at start-up by the command (search.apps.checks).
"""

from __future__ import annotations

import math

from search.config.common import validate_common
from search.config.credentials import mask_credentials
from search.config.params import parse_params
from search.config.schema import (
    BUDGET_MODES,
    FROM_DATA,
    PRUNERS,
    SAMPLERS,
    STRATEGIES,
    BudgetConfig,
    Config,
    ConfigError,
    ConfirmConfig,
    SearchConfig,
    fail,
    one_of,
    positive,
    ranges_from_config,
)
from space.io import GENOTYPE_SUFFIXES
from space.presets import PRESETS, preset

__all__ = ["validate"]


def _validate_budget(b: BudgetConfig) -> None:
    positive("budget.macs", b.macs)
    if b.params is not None:
        positive("budget.params", b.params)
    one_of("budget.mode", b.mode, BUDGET_MODES)
    if not 0 < b.min_fraction <= 1:
        fail("budget.min_fraction", b.min_fraction, "must be in (0, 1]")
    if b.latency_ms is not None and not (b.latency_ms > 0 and math.isfinite(b.latency_ms)):
        fail("budget.latency_ms", b.latency_ms, "must be > 0 milliseconds (or null: no latency budget)")
    positive("budget.latency_batch", b.latency_batch)
    positive("budget.latency_threads", b.latency_threads)


def validate(cfg: Config) -> None:
    """Check everything the schema's types cannot; raise `ConfigError` on the first problem."""
    s = cfg.space
    if s.base not in PRESETS and not s.base.endswith(GENOTYPE_SUFFIXES):
        fail(
            "space.base",
            s.base,
            f"neither a preset ({', '.join(PRESETS)}) nor a {'/'.join(GENOTYPE_SUFFIXES)} genotype file",
        )
    for key in FROM_DATA:
        if key in s.genotype:
            fail(f"space.genotype.{key}", s.genotype[key], "is set by the data (see data.resolution)")
    try:
        ranges = ranges_from_config(s)
    except ValueError as err:
        raise ConfigError(f"space.{err}") from None
    if s.base in PRESETS:
        stages = len(preset(s.base).stages)
        if len(ranges.modules_per_stage) != stages:
            fail(
                "space.modules_per_stage",
                s.modules_per_stage,
                f"needs one [low, high] per stage of {s.base} ({stages})",
            )
    _validate_budget(cfg.budget)
    one_of("search.sampler", cfg.search.sampler, SAMPLERS)
    one_of("search.pruner", cfg.search.pruner, PRUNERS)
    positive("search.n_trials", cfg.search.n_trials)
    if cfg.search.budget_seconds is not None:
        positive("search.budget_seconds", cfg.search.budget_seconds)
    positive("search.max_untrained_in_row", cfg.search.max_untrained_in_row)
    if cfg.search.prescreen is not None:  # the proxy's name: search.apps.checks
        positive("search.prescreen_candidates", cfg.search.prescreen_candidates)
        positive("search.prescreen_trials", cfg.search.prescreen_trials)
        if cfg.search.prescreen_trials > cfg.search.prescreen_candidates:
            fail(
                "search.prescreen_trials",
                cfg.search.prescreen_trials,
                f"exceeds search.prescreen_candidates={cfg.search.prescreen_candidates}",
            )
    if not cfg.study.name or "/" in cfg.study.name:
        fail("study.name", cfg.study.name, "must be a non-empty name without '/'")
    positive("search.population", cfg.search.population)
    if not 1 <= cfg.search.tournament <= cfg.search.population:
        fail("search.tournament", cfg.search.tournament, f"must be in [1, search.population={cfg.search.population}]")
    if cfg.search.n_startup_trials < 0:
        fail("search.n_startup_trials", cfg.search.n_startup_trials, "must be >= 0")
    _validate_scale_out(cfg.search)
    _validate_supernet(cfg)
    _validate_confirm(cfg.search.confirm, cfg.train.seed)
    _validate_confirm_fidelity(cfg.search.confirm, train_epochs=cfg.train.epochs, subset=cfg.data.subset)
    validate_common(data=cfg.data, train=cfg.train, logger=cfg.logger)
    parse_params(cfg)


def _validate_confirm(c: ConfirmConfig, search_seed: int) -> None:
    if c.top_k < 0:
        fail("search.confirm.top_k", c.top_k, "must be >= 0 (0: off)")
    if c.top_k and not c.seeds:
        fail("search.confirm.seeds", c.seeds, "needs at least one seed (or search.confirm.top_k=0: off)")
    if len(set(c.seeds)) != len(c.seeds):
        fail("search.confirm.seeds", c.seeds, "must be distinct")
    if search_seed in c.seeds:
        fail("search.confirm.seeds", c.seeds, f"must differ from train.seed={search_seed}: confirmation is a new draw")
    if c.epochs is not None:
        positive("search.confirm.epochs", c.epochs)
    if c.subset is not None and c.subset < 10:
        fail("search.confirm.subset", c.subset, "must be >= 10 (or null: the search's data.subset)")


def _validate_confirm_fidelity(c: ConfirmConfig, *, train_epochs: int, subset: int | None) -> None:
    """Confirmation retrains the best at a higher fidelity, never a lower one: a "confirmed"
    best measured with fewer epochs or images than the search's would be worth less than the
    search's own value."""
    if not c.top_k:
        return
    if c.epochs is not None and c.epochs < train_epochs:
        fail(
            "search.confirm.epochs",
            c.epochs,
            f"below train.epochs={train_epochs}: confirmation cannot be a lower fidelity than the search "
            "(null: the search's epochs)",
        )
    if c.subset is not None and subset is not None and c.subset < subset:  # data.subset null: once loaded
        fail(
            "search.confirm.subset",
            c.subset,
            f"below data.subset={subset}, the search's images: confirmation cannot be a lower fidelity "
            "(null: the search's images)",
        )


def _validate_scale_out(s: SearchConfig) -> None:
    positive("search.n_workers", s.n_workers)
    if s.worker < 0:
        fail("search.worker", s.worker, "must be >= 0")
    if s.checkpoint_seconds is not None and s.checkpoint_seconds < 0:
        fail("search.checkpoint_seconds", s.checkpoint_seconds, "must be >= 0 (0: every epoch) or null (never)")
    if s.log_epochs_after is not None and s.log_epochs_after < 0:
        fail("search.log_epochs_after", s.log_epochs_after, "must be >= 0 (0: every epoch) or null (never)")
    if s.max_retry < 0:
        fail("search.max_retry", s.max_retry, "must be >= 0")
    if s.heartbeat_interval is not None:
        positive("search.heartbeat_interval", s.heartbeat_interval)
    if s.storage_patience is not None and s.storage_patience < 0:
        fail("search.storage_patience", s.storage_patience, "must be >= 0 (or null: give up at once)")
    if s.grace_period is not None:
        if s.heartbeat_interval is None:
            fail("search.grace_period", s.grace_period, "needs search.heartbeat_interval (null turns heartbeats off)")
        if s.grace_period <= s.heartbeat_interval:
            fail("search.grace_period", s.grace_period, f"must exceed search.heartbeat_interval={s.heartbeat_interval}")
    storage = s.storage or ""
    if storage and "://" not in storage:
        fail(
            "search.storage",
            mask_credentials(storage),
            "must be an RDB URL (sqlite:///file.db, postgresql+psycopg://user@host/db) or journal:///path/file.log",
        )
    if ":memory:" in storage or storage.rstrip("/") in ("sqlite:", "journal:"):
        fail("search.storage", mask_credentials(storage), "keeps nothing on disk: a study must outlive its workers")


def _validate_supernet(cfg: Config) -> None:
    """The supernet's settings (every command reads them: inception-supernet, and the search
    under search.strategy=supernet) and the strategy's own."""
    one_of("search.strategy", cfg.search.strategy, STRATEGIES)
    positive("search.train_top_k", cfg.search.train_top_k)
    if cfg.search.strategy == "supernet" and cfg.search.confirm.top_k > cfg.search.train_top_k:
        fail(
            "search.confirm.top_k",
            cfg.search.confirm.top_k,
            f"exceeds search.train_top_k={cfg.search.train_top_k}: only that many networks are trained on their own",
        )
    s = cfg.supernet
    if len(s.budgets) != 2 or not 0 < s.budgets[0] <= s.budgets[1]:
        fail("supernet.budgets", s.budgets, "needs [low, high] multiples of supernet.macs with 0 < low <= high")
    if s.macs is not None:
        positive("supernet.macs", s.macs)
    for key in ("epochs", "calibration_batches", "calibration_batch_size"):
        positive(f"supernet.{key}", getattr(s, key))
    for key in ("random_subnets", "probes"):
        if getattr(s, key) < 0:
            fail(f"supernet.{key}", getattr(s, key), "must be >= 0")
    for key in ("score_images", "probe_images"):
        if getattr(s, key) is not None:
            positive(f"supernet.{key}", getattr(s, key))
