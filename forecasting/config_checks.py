"""Every value the forecasting job reads, checked before any file is opened (pipeline layer).

``check_config(cfg)`` refuses the first impossible value in one line naming its key, e.g.
``backtest.horizon=7.5: must be a whole number of days >= 1``; the model's hyperparameters are
checked by its class, members of an ensemble and the model wrapped by ``conformal`` included.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from forecasting.calendar import UK_NATIONS
from forecasting.data import CountChecks
from forecasting.hierarchy.settings import HierarchySettings
from forecasting.metrics import MASE_SCALES
from forecasting.models.base import Forecaster
from forecasting.models.conformal import RECALIBRATE, SCALES, IntervalSettings
from mlops.config_checks import (
    Choice,
    ExistingPath,
    Flag,
    IsoDate,
    ListOf,
    MappingOf,
    Number,
    Rule,
    Text,
    WholeNumber,
    check_all,
    check_distinct,
    check_read_options,
    check_tracking,
    lookup,
    refuse,
    sequence_of_items,
    shown,
)
from mlops.errors import ConfigError
from mlops.tables import ReadOptions

MAX_DAYS = 3660  # ten years
LEVELS = ListOf(
    WholeNumber(1, 99),
    what="a non-empty list of whole percentages between 0 and 100 (exclusive), e.g. [80,95]",
)

RULES: dict[str, Rule] = {
    "experiment_name": Text(),
    "data.name": Text(),
    "data.path": ExistingPath("file"),
    "data.columns": MappingOf(
        Text(nullable=True), what="a mapping {unique_id: column, ds: column, y: column}"
    ),
    "data.keep": ListOf(Text(), min_length=0, what="a list of column names, e.g. [y_expected]"),
    "data.exclude_series": ListOf(Text(), min_length=0, what="a list of series names, e.g. [OOA]"),
    "data.records": Flag(),
    "data.train_end": IsoDate(),
    "data.fill_missing": WholeNumber(0, nullable=True, what="a whole number of calls"),
    # Upper bounds catch typos (and date overflow): ten years of daily forecasts is already a lot.
    "backtest.horizon": WholeNumber(1, MAX_DAYS, unit="days"),
    "backtest.n_origins": WholeNumber(1, 1000, unit="origins"),
    "backtest.step": WholeNumber(1, MAX_DAYS, unit="days"),
    "backtest.season_length": WholeNumber(1, 366, unit="days"),
    "backtest.first_cutoff": IsoDate(),
    "levels": LEVELS,
    "calendar.nation": Choice(tuple(UK_NATIONS)),
    "serving.max_horizon": WholeNumber(1, MAX_DAYS, unit="days"),
    "plot.n_series": WholeNumber(1, 100, unit="series"),
    "plot.history_days": WholeNumber(1, 10 * MAX_DAYS, unit="days"),
    # Last: it interpolates other groups (data.name, calls.name, population.name) checked above.
    "registry.model_name": Text(),
}

# Metric options for published protocols; optional so configs written before them still run.
BACKTEST_OPTIONAL: dict[str, Rule] = {
    "backtest.mase_scale": Choice(MASE_SCALES),
    "backtest.horizon_bands": ListOf(
        ListOf(WholeNumber(1, MAX_DAYS), min_length=2),
        min_length=0,
        nullable=True,
        what="a list of [first, last] days ahead, e.g. [[1,42],[43,84]]",
    ),
}

# The recalibration of every model's intervals (conf/forecast.yaml `intervals`); optional so
# configs written before it still run (with IntervalSettings' defaults).
INTERVAL_RULES: dict[str, Rule] = {
    "intervals.recalibrate": Choice(RECALIBRATE),
    "intervals.n_windows": WholeNumber(1, 100, unit="origins"),
    "intervals.step": WholeNumber(1, MAX_DAYS, unit="days"),
    "intervals.tolerance": Number(0, 1, what="a fraction, e.g. 0.025 for 2.5 points"),
    "intervals.scale": Choice(SCALES),
    "intervals.band": WholeNumber(0, MAX_DAYS, unit="days"),
}

HINTS = {
    "data.path": "the CSV or Parquet file of daily counts, e.g. data.path=my_counts.csv",
}

NATION = Choice(tuple(UK_NATIONS))
WINDOW = WholeNumber(
    28, 10 * MAX_DAYS, unit="days", nullable=True
)  # fewer days than this cannot show a season
ANNUAL_ORDER = WholeNumber(0, 20)  # Fourier pairs of the yearly cycle; more only fits noise

# Hyperparameters by model class. Keys a class does not list are still refused when its
# constructor does not take them (see _check_known_parameters).
MODEL_RULES: dict[str, dict[str, Rule]] = {
    "forecasting.models.GlobalLightGBM": {
        "n_estimators": WholeNumber(1),
        "learning_rate": Number(0, low_open=True),
        "num_leaves": WholeNumber(2),
        "min_child_samples": WholeNumber(1),
        "feature_fraction": Number(0, 1, low_open=True),
        "lambda_l2": Number(0),
        "annual_order": ANNUAL_ORDER,
        "trend_window_days": WholeNumber(28, 10 * MAX_DAYS, unit="days"),
        "level_window_days": WholeNumber(0, 10 * MAX_DAYS, unit="days"),
        "calibration_days": WholeNumber(7, MAX_DAYS, unit="days"),
        "nation": NATION,
        "n_jobs": WholeNumber(),
        "random_state": WholeNumber(0),
    },
    "forecasting.models.CalendarGLM": {
        # Counts include zeros: a log-link Tweedie GLM needs a power in [1, 2) (1 = Poisson).
        "power": Number(1, 2, high_open=True, what="a Tweedie power"),
        "alpha": Number(0),
        "annual_order": ANNUAL_ORDER,
        "nation": NATION,
        "window_days": WINDOW,
    },
    "forecasting.models.ArimaRegression": {
        "order": ListOf(WholeNumber(0, 5), min_length=3, what="[p,d,q]: three whole numbers from 0 to 5"),
        "annual_order": ANNUAL_ORDER,
        "nation": NATION,
        "window_days": WINDOW,
        "method": Choice(("innovations_mle", "statespace")),
    },
    "forecasting.models.ETS": {
        "season_length": WholeNumber(2, 366, unit="days"),
        "damped_trend": Flag(),
        "window_days": WINDOW,
        "initialization": Choice(("heuristic", "estimated")),
    },
    "forecasting.models.SeasonalNaive": {"season_length": WholeNumber(1, 366, unit="days")},
    "forecasting.models.Ensemble": {
        "combine": Choice(("mean", "median")),
        "weights": ListOf(Number(0), what="one weight >= 0 per member, e.g. [0.5,0.5]", nullable=True),
    },
    "forecasting.models.AutoForecaster": {
        "candidates": MappingOf(what="a mapping {name: model config}, e.g. {glm: {_target_: ...}}"),
        "combinations": ListOf(
            Choice(("equal", "inverse_error")), min_length=0, what="a list of equal, inverse_error"
        ),
        "max_members": WholeNumber(2, 20),
        "n_origins": WholeNumber(1, 100, unit="origins"),
        "step": WholeNumber(1, MAX_DAYS, unit="days"),
        "horizon": WholeNumber(1, MAX_DAYS, unit="days"),
        "season_length": WholeNumber(1, 366, unit="days"),
        "levels": LEVELS,
        "coverage_tolerance": Number(-1, 1, what="a fraction, e.g. 0.025 for 2.5 points"),
        "recalibrate": Flag(),  # the job sets the mode from `intervals.recalibrate`
        "recalibration_scale": Choice(SCALES),
        "recalibration_band": WholeNumber(0, MAX_DAYS, unit="days"),
    },
    "forecasting.models.BacktestConformal": {
        "n_windows": WholeNumber(1, 100, unit="origins"),
        "coverage_tolerance": Number(0, 1, nullable=True, what="a fraction, e.g. 0.025, or null (always)"),
        "levels": LEVELS,
        "step": WholeNumber(1, MAX_DAYS, unit="days"),
        "horizon": WholeNumber(1, MAX_DAYS, unit="days"),
        "scale": Choice(SCALES),
        "band": WholeNumber(0, MAX_DAYS, unit="days"),
    },
}
MODEL_CONFIGS = "auto, seasonal_naive, lightgbm, glm, ets, arima, ensemble, conformal"  # conf/model/*.yaml


def count_check_rules(key: str) -> dict[str, Rule]:
    """Types of a plausibility screen for daily counts (``data.checks``, ``history.checks``)."""
    return {
        key: MappingOf(nullable=True, what="a mapping {max_ratio_to_median: ..., median_floor: ...}"),
        f"{key}.max_ratio_to_median": Number(1, low_open=True, nullable=True),
        f"{key}.median_floor": Number(0),
    }


@dataclass(frozen=True)
class CheckedForecastConfig:
    """Values the job uses in a converted form."""

    levels: list[int]
    intervals: IntervalSettings = IntervalSettings()


def check_config(cfg: DictConfig) -> CheckedForecastConfig:
    """Refuse the first impossible value of the forecasting config; return the interval levels.

    Raises
    ------
    ConfigError
        One line naming the key, the value and what is allowed.
    """
    name_own_data(cfg)
    values = check_all(cfg, RULES, HINTS)
    cutoff, train_end = values["backtest.first_cutoff"], values["data.train_end"]
    if cutoff is not None and train_end is not None and cutoff >= train_end:
        raise ConfigError(
            f"backtest.first_cutoff={shown(lookup(cfg, 'backtest.first_cutoff'))} must be before "
            f"data.train_end={shown(lookup(cfg, 'data.train_end'))}: the backtest needs data after its "
            "first origin"
        )
    _check_bands(cfg, check_all(cfg, BACKTEST_OPTIONAL, optional=True), values["backtest.horizon"])
    check_distinct(cfg, "data.columns")
    columns = values["data.columns"]
    for name in ("ds", "y"):
        if not columns.get(name):
            raise ConfigError(f"data.columns.{name} is required: the file's column for {name}")
    # The reader's options and the plausibility screen have their own checks (no file is read).
    check_read_options(cfg, "data.read")
    ReadOptions.from_config(_plain(lookup(cfg, "data.read", default=None)), "data.read")
    check_all(cfg, count_check_rules("data.checks"), optional=True)
    CountChecks.from_config(_plain(lookup(cfg, "data.checks", default=None)), "data.checks")
    check_model(cfg, "model")
    records = bool(lookup(cfg, "data.records", default=False))
    HierarchySettings.from_config(_plain(lookup(cfg, "hierarchy", default=None)), records=records)
    check_tracking(cfg)
    intervals = check_all(cfg, INTERVAL_RULES, optional=True)
    intervals = IntervalSettings(**{key.removeprefix("intervals."): v for key, v in intervals.items()})
    return CheckedForecastConfig(levels=sorted(set(values["levels"])), intervals=intervals)


def _check_bands(cfg: DictConfig, values: dict, horizon: int) -> None:
    """Each horizon band is [first, last] with 1 <= first <= last <= backtest.horizon."""
    for band in values.get("backtest.horizon_bands") or []:
        if len(band) != 2 or band[0] > band[1] or band[1] > horizon:
            raise ConfigError(
                f"backtest.horizon_bands={shown(lookup(cfg, 'backtest.horizon_bands'))}: each band must be "
                f"[first, last] days ahead with first <= last <= backtest.horizon ({horizon}), "
                f"e.g. [[1,{max(horizon // 2, 1)}],[{horizon // 2 + 1},{horizon}]]"
            )


def name_own_data(cfg: DictConfig) -> None:
    """Name an own file left unnamed (``data.name=null``) after the file, e.g. calls.csv -> calls.

    The model registers as ``daily-demand-<data.name>``, so unrelated files never compete for one
    champion. This is the one value the checks fill in; a missing ``data.path`` is refused here.
    """
    if lookup(cfg, "data.name", default=None) is not None:
        return
    path = lookup(cfg, "data.path", hint=HINTS["data.path"])
    if not isinstance(path, str) or not path.strip():
        raise refuse("data.path", path, HINTS["data.path"])
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(path).stem).strip("-.") or "data"
    cfg.data.name = stem


def check_model(cfg: DictConfig, key: str) -> None:
    """Check the model config at ``key`` (and any models inside it) against its class's rules."""
    node = lookup(cfg, key)
    if not isinstance(node, DictConfig | Mapping) or not node.get("_target_"):
        raise refuse(key, node, "a model config with a _target_, e.g. model=lightgbm")
    target = str(node["_target_"])
    try:
        cls = _import_class(target)
    except Exception:  # noqa: BLE001 - an import can fail in many ways; all mean a wrong _target_
        raise ConfigError(
            f"{key}._target_={target}: not a model class that can be imported; choose a model with "
            f"model=<one of {MODEL_CONFIGS}>"
        ) from None
    if not issubclass(cls, Forecaster):
        raise ConfigError(
            f"{key}._target_={target}: not a forecasting model (a subclass of "
            f"forecasting.models.Forecaster); choose one with model=<one of {MODEL_CONFIGS}>"
        )
    _check_known_parameters(node, key, cls)
    rules = next((r for name, r in MODEL_RULES.items() if _import_class(name) is cls), {})
    for name, rule in rules.items():
        if name in node:
            rule.check(cfg, f"{key}.{name}")
    if target.endswith("ArimaRegression") and "order" in node and len(node["order"]) != 3:
        raise refuse(f"{key}.order", node["order"], "[p,d,q]: three whole numbers from 0 to 5")
    if "members" in node:
        members = sequence_of_items(node["members"])
        if not members:
            raise refuse(f"{key}.members", node["members"], "a non-empty list of model configs")
        for i in range(len(members)):
            check_model(cfg, f"{key}.members[{i}]")
        weights = node.get("weights")
        if weights is not None and (len(weights) != len(members) or sum(float(w) for w in weights) <= 0):
            allowed = f"one weight >= 0 per member ({len(members)}), not all zero, or null"
            raise refuse(f"{key}.weights", weights, allowed)
    if "model" in node:  # a wrapper (conformal) around another model
        check_model(cfg, f"{key}.model")
    if "candidates" in node:  # auto's candidates, each a full model config
        candidates = node["candidates"]
        if not isinstance(candidates, DictConfig | Mapping) or not candidates:
            raise refuse(f"{key}.candidates", candidates, "a non-empty mapping {name: model config}")
        for name in candidates:
            check_model(cfg, f"{key}.candidates.{name}")


def _plain(node: object) -> object:
    """A config node as plain Python values (the reader's checks take mappings, not DictConfig)."""
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)
    return node


def _import_class(target: str) -> type:
    module, _, name = target.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if not isinstance(cls, type):
        raise TypeError(f"{target} is not a class")
    return cls


def _check_known_parameters(node, key: str, cls: type) -> None:
    """A key the constructor does not take would fail only after the data is read: refuse it now."""
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    known = [name for name in parameters if name != "self"]
    for name in node:
        if str(name).startswith("_"):
            continue  # _target_, _convert_, ... are Hydra's
        if name not in known:
            raise ConfigError(
                f"{key}.{name} is not a parameter of {cls.__name__}; it takes {', '.join(known)}"
            )


POSITIVE = Number(0, low_open=True)


def event_rules(key: str) -> dict[str, Rule]:
    """Types of the synthetic world's event switches (all optional: each has a default)."""
    fields = {
        "ar_deviation": {"sd": Number(0, 0.5), "autocorrelation": Number(0, 0.999)},
        "level_shift": {"area": Text(), "date": IsoDate(nullable=False), "factor": Number(0.1, 10)},
        "pandemic": {
            "start": IsoDate(nullable=False),
            "trough_factor": Number(0.05, 1),
            "drop_days": WholeNumber(1, MAX_DAYS, unit="days"),
            "rebound_days": WholeNumber(1, MAX_DAYS, unit="days"),
        },
        "outages": {"per_year": Number(0, 50, what="days a year"), "factor": Number(0, 1, what="a share")},
        "heatwaves": {
            "per_year": WholeNumber(0, 10, unit="spells"),
            "length_days": WholeNumber(1, 30, unit="days"),
            "effect": Number(0, 1, what="a fraction"),
        },
        "capacity": {
            "areas": ListOf(Text(), what="a non-empty list of area names"),
            "headroom": Number(1.01, 100),
        },
    }
    rules: dict[str, Rule] = {
        key: MappingOf(what="a mapping of event switches, e.g. {pandemic: {enabled: true}}")
    }
    for name, settings in fields.items():
        rules[f"{key}.{name}"] = MappingOf(what=f"a mapping of {name} settings, e.g. {{enabled: false}}")
        rules[f"{key}.{name}.enabled"] = Flag()
        rules |= {f"{key}.{name}.{setting}": rule for setting, rule in settings.items()}
    return rules


GENERATE_RULES: dict[str, Rule] = {
    "population_path": ExistingPath("file"),
    "output_dir": Text(what="a folder to write the world to"),
    "world.seed": WholeNumber(0),
    "world.start": IsoDate(nullable=False),
    "world.end": IsoDate(nullable=False),
    "world.areas": ListOf(
        MappingOf(),
        what="a non-empty list of {name, population, older_tilt}, e.g. [{name:city,population:1e6}]",
    ),
    "world.incidents_per_1000_per_year": POSITIVE,
    "world.age_rate_ratio": MappingOf(POSITIVE, what="a mapping {age band: ratio > 0}"),
    "world.rate_trend_per_year": Number(-0.1, 0.1, what="a yearly fraction"),
    "world.weekday_factor": MappingOf(POSITIVE, what="a mapping {Mon..Sun: factor > 0}"),
    "world.month_factor": MappingOf(POSITIVE, what="a mapping {Jan..Dec: factor > 0}"),
    "world.bank_holiday_factor": POSITIVE,
    "world.festive_factor": MappingOf(POSITIVE, what="a mapping {MM-DD: factor > 0}"),
    "world.category_mix": MappingOf(Number(0, 1, what="a share"), what="a mapping {C1..C4: share}"),
    "world.dispersion_shape": POSITIVE,
}
GENERATE_OPTIONAL: dict[str, Rule] = {
    "world.temperature": MappingOf(what="a mapping of temperature settings, e.g. {enabled: false}"),
    "world.temperature.enabled": Flag(),
    "world.temperature.mean_c": Number(-30, 50, what="degrees C"),
    "world.temperature.amplitude_c": Number(0, 40, what="degrees C"),
    "world.temperature.warmest_day_of_year": WholeNumber(1, 366),
    "world.temperature.noise_sd_c": Number(0, 20, what="degrees C"),
    "world.temperature.autocorrelation": Number(0, 1, high_open=True),
    "world.temperature.heat_threshold_c": Number(-30, 50, what="degrees C"),
    "world.temperature.heat_effect_per_c": Number(0, 1, what="a fraction of calls per degree"),
    # The world's own calendar beyond one bank-holiday factor, and the switches that make it hard
    # (forecasting/synthetic_events.py).
    "world.holiday_factors": MappingOf(POSITIVE, what="a mapping {bank holiday name: factor > 0}"),
    "world.day_after_holiday_factor": POSITIVE,
    "world.other_days": MappingOf(POSITIVE, what="a mapping {MM-DD: factor > 0}"),
    **event_rules("world.events"),
}
AREA_RULES: dict[str, Rule] = {
    "name": Text(),
    "population": Number(0, low_open=True, what="a number of residents"),
    "older_tilt": POSITIVE,
    "nation": NATION,
}


def check_generate_config(cfg: DictConfig) -> None:
    """Refuse the first impossible value of the synthetic world's config (``forecasting.generate``)."""
    values = check_all(cfg, GENERATE_RULES)
    check_all(cfg, GENERATE_OPTIONAL, optional=True)
    if not values["world.start"] < values["world.end"]:
        raise ConfigError(
            f"world.end={shown(lookup(cfg, 'world.end'))} must be after "
            f"world.start={shown(lookup(cfg, 'world.start'))}"
        )
    # Local import: the synthetic world is only needed here, not by the forecasting job's checks.
    from forecasting.synthetic import Area, Temperature, World

    world = OmegaConf.to_container(cfg.world, resolve=True)
    _check_fields(world, "world", World)
    _check_fields(world.get("temperature") or {}, "world.temperature", Temperature)
    for i, area in enumerate(values["world.areas"]):
        _check_fields(area, f"world.areas[{i}]", Area)
        for name, rule in AREA_RULES.items():
            if name in area or name in ("name", "population"):  # the others have defaults
                rule.apply(area.get(name), f"world.areas[{i}].{name}")
    World.from_dict(world)  # its cross-checks (weekday and month keys, shares summing to 1)


def _check_fields(given: Mapping, key: str, cls: type) -> None:
    """Refuse a key the dataclass does not have (a typo would otherwise be a TypeError)."""
    known = {f.name for f in dataclasses.fields(cls)}
    for name in given:
        if name not in known:
            raise ConfigError(f"{key}.{name} is not a setting of {key}; it has {', '.join(sorted(known))}")
