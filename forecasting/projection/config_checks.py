"""Every value the projection job reads, checked before any file is opened (pipeline layer).

``check_config(cfg)`` refuses the first impossible value in one line naming its key, the value
and what is allowed, e.g. ``base_year=abc: must be a year from 1900 to 2200``. Scenarios (the
headline and each one compared) are checked value by value and then as a whole (shares summing to 1).
"""

from __future__ import annotations

from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf

from forecasting.calendar import UK_NATIONS
from forecasting.config_checks import count_check_rules
from forecasting.data import CountChecks
from forecasting.projection.scenario import MAX_ABS_TREND, MAX_TARGET_YEARS, Scenario
from mlops.config_checks import (
    Choice,
    ExistingPath,
    Flag,
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
    probability,
    refuse,
    share,
)
from mlops.errors import ConfigError
from mlops.tables import ReadOptions

YEAR = WholeNumber(1900, 2200, what="a year")
COLUMNS = MappingOf(Text(), what="a mapping {name: column in the file}")

RULES: dict[str, Rule] = {
    "experiment_name": Text(),
    "base_year": YEAR,
    "horizon_years": WholeNumber(1, 30, unit="years"),
    "n_paths": WholeNumber(50, 1_000_000, unit="paths"),  # fewer than 50 gives unstable quantiles
    "quantiles": ListOf(
        probability(),
        min_length=2,
        increasing=True,
        what="two or more increasing values between 0 and 1 (exclusive), e.g. [0.1,0.5,0.9]",
    ),
    "peak_quantile": Number(0.5, 1, high_open=True),
    "population_sd": Number(0, 1),
    "seed": WholeNumber(0),
    "history.name": Text(),
    "history.counts_path": ExistingPath("file"),
    "history.columns": COLUMNS,
    "history.areas": ListOf(Text(), min_length=0, what="a list of area names (empty: all)"),
    "history.nation": Choice(tuple(UK_NATIONS)),
    "rates.source": Choice(("fit", "config")),
    "rates.area_effects": Flag(),
    "rates.rate_ratio": MappingOf(
        Number(0, low_open=True), what="a mapping {age band: calls per resident relative to 45-49}"
    ),
    "rates.calls_per_1000": Number(0, low_open=True),
    "rates.trend_per_year": Number(-MAX_ABS_TREND, MAX_ABS_TREND, what="a yearly fraction"),
    "daily_shape.fit_on": Choice(("total", "areas")),
    "daily_shape.annual_order": WholeNumber(0, 20),
    "backtest.counts_path": ExistingPath("file"),
    "backtest.population_path": ExistingPath("file"),
    "backtest.fit_through": YEAR,
    "population.name": Text(),
    "population.path": ExistingPath("file"),
    "population.columns": COLUMNS,
    "population.areas": MappingOf(
        Number(0, low_open=True, what="a number of residents"),
        nullable=True,
        what="a mapping {area: residents in base_year}, e.g. {trust:4600000}",
    ),
    "total_area": Text(nullable=True, what="a name for the sum of the areas, or null for none"),
    "uncertainty.drift_sd": Number(0, 1, what="a yearly sd of log growth, e.g. 0.005"),
    "uncertainty.innovation_sd": Number(0, 1, what="a yearly sd of the log rate, e.g. 0.02"),
    "uncertainty.shift_probability": Number(0, 1, what="a yearly chance from 0 to 1"),
    "uncertainty.shift_sd": Number(0, 1, what="an sd of the log level, e.g. 0.07"),
    # Last: it interpolates other groups (data.name, calls.name, population.name) checked above.
    "registry.model_name": Text(),
}

# Only the population groups that take them (population=csv).
OPTIONAL_RULES: dict[str, Rule] = {
    "workforce.enabled": Flag(),
    "workforce.job_cycle_min.travel": MappingOf(
        Number(0, 1440, what="minutes"), what="a mapping {C1: minutes, C2: ..., C3: ..., C4: ...}"
    ),
    "workforce.job_cycle_min.on_scene": Number(0, 1440, what="minutes"),
    "workforce.job_cycle_min.to_hospital": Number(0, 1440, what="minutes"),
    "workforce.job_cycle_min.handover": Number(0, 1440, what="minutes"),
    "workforce.job_cycle_min.clear": Number(0, 1440, what="minutes"),
    "workforce.utilisation": Number(0.05, 1, what="a busy share of a shift, e.g. 0.75"),
    "workforce.crew_size": WholeNumber(1, 10, unit="people"),
    "workforce.hub.closure_rate": Number(0, 1, low_open=True, what="a share of assessed calls, e.g. 0.24"),
    "workforce.hub.assessment_min": Number(0, 600, low_open=True, what="minutes"),
    "workforce.hub.answer_within_min": Number(0, 600, what="minutes"),
    "workforce.hub.target": probability(),
    "workforce.hub.patience_min": Number(
        0, 600, low_open=True, nullable=True, what="mean minutes before a caller hangs up, or null for none"
    ),
    "workforce.profile.calls_path": ExistingPath("file", nullable=True),
    "workforce.profile.time_column": Text(),
    "workforce.profile.hour_shares": ListOf(
        Number(0, 1, what="a share"), min_length=24, what="24 shares of calls by hour (midnight first)"
    ),
    "population.area_of": MappingOf(
        Text(), nullable=True, what="a mapping {area in the file: your area}, e.g. {Cornwall: west}"
    ),
}

HINTS = {
    "population.path": (
        "the CSV or Parquet population table (area, year, age_band, population), e.g. "
        "population.path=my_local_authorities.csv"
    ),
}

SCENARIO_RULES: dict[str, Rule] = {
    "name": Text(),
    "ageing": MappingOf(
        Number(0, what="a growth scale"), what="a mapping {age range: scale}, e.g. {85+:1.46}"
    ),
    "rate_trend_per_year": Number(-MAX_ABS_TREND, MAX_ABS_TREND, nullable=True, what="a yearly fraction"),
    "category_mix": MappingOf(share(), what="a mapping {C1: share, C2: share, C3: share, C4: share}"),
    "remote_closure.start_share": share(),
    "remote_closure.end_share": share(),
    "remote_closure.end_year": YEAR,
    "attended_split": MappingOf(share(), what="a mapping {see_and_treat: share, conveyed: share}"),
}
OPTIONAL_SCENARIO_KEYS = {"ageing", "rate_trend_per_year", "attended_split"}  # Scenario has defaults


def check_config(cfg: DictConfig) -> None:
    """Refuse the first impossible value of the projection config.

    Raises
    ------
    ConfigError
        One line naming the key, the value and what is allowed.
    """
    values = check_all(cfg, RULES, HINTS)
    check_all(cfg, OPTIONAL_RULES, optional=True)
    if values["rates.source"] == "fit":  # the history's own population is read only to fit rates
        ExistingPath("file").check(cfg, "history.population_path")
    for key in ("history.columns", "population.columns"):
        check_distinct(cfg, key)
    for key, names in {
        "history.columns": ("area", "ds", "y"),
        "population.columns": ("area", "year", "age_band", "population"),
    }.items():
        for name in names:
            if not values[key].get(name):
                raise ConfigError(f"{key}.{name} is required: the file's column for {name}")
    read_keys = ["history.read", "population.read"]
    if lookup(cfg, "workforce.read", default=None) is not None:
        read_keys.append("workforce.read")
    for key in read_keys:  # the reader's own checks; no file is read
        check_read_options(cfg, key)
        ReadOptions.from_config(_plain(lookup(cfg, key, default=None)), key)
    check_all(cfg, count_check_rules("history.checks"), optional=True)
    CountChecks.from_config(_plain(lookup(cfg, "history.checks", default=None)), "history.checks")
    base_year = values["base_year"]
    scenarios = {"scenario": lookup(cfg, "scenario")}
    compare = lookup(cfg, "compare", default=None)
    if compare is None:
        compare = {}
    if not isinstance(compare, DictConfig | Mapping):
        raise refuse("compare", compare, "a mapping {name: scenario}, e.g. +scenario@compare.x=high_ageing")
    scenarios.update({f"compare.{name}": compare[name] for name in compare})
    for key in scenarios:
        check_scenario(cfg, key, base_year)
    check_tracking(cfg)


def _plain(node: object) -> object:
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)
    return node


def check_scenario(cfg: DictConfig, key: str, base_year: int) -> None:
    """One scenario at ``key``: each value, then the whole (keys and shares summing to 1)."""
    node = lookup(cfg, key)
    if not isinstance(node, DictConfig | Mapping):
        raise refuse(key, node, "a scenario, e.g. scenario=high_ageing")
    for name, rule in SCENARIO_RULES.items():
        if name in OPTIONAL_SCENARIO_KEYS and lookup(cfg, f"{key}.{name}", default=None) is None:
            continue
        rule.check(cfg, f"{key}.{name}")
    end_year = YEAR.check(cfg, f"{key}.remote_closure.end_year")
    if not base_year <= end_year <= base_year + MAX_TARGET_YEARS:
        raise ConfigError(
            f"{key}.remote_closure.end_year={end_year}: must be a year from base_year ({base_year}) to "
            f"{base_year + MAX_TARGET_YEARS}"
        )
    try:
        Scenario.from_dict(OmegaConf.to_container(node, resolve=True))
    except ConfigError as error:  # its message says "scenario 'name': ...": say where in the config
        message, prefix = str(error), f"scenario {str(node.get('name'))!r}: "
        where = f"{key}.{message[len(prefix) :]}" if message.startswith(prefix) else f"{key}: {message}"
        raise ConfigError(where) from None
