"""Every value the remote-closure job reads, checked before any file is opened (pipeline layer).

``check_config(cfg)`` refuses the first impossible value in one line naming its key, the value
and what is allowed, e.g. ``safety.limit=1.5: must be a number in (0, 1)``. The classifiers'
hyperparameters (and every value of their tuning grids) are checked by estimator class.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer_names

from disposition.calibration import METHODS
from disposition.data import SPLITS, CallSpec
from disposition.features import TIME_FEATURES
from disposition.model_choice import METRICS
from mlops.config_checks import (
    Choice,
    ExistingPath,
    Flag,
    IsoDate,
    ListOf,
    MappingOf,
    Number,
    Refused,
    Rule,
    Text,
    WholeNumber,
    check_all,
    check_read_options,
    check_tracking,
    lookup,
    probability,
    refuse,
    shown,
)
from mlops.errors import ConfigError
from mlops.tables import ReadOptions


class PlanStart(Rule):
    """``safety.plan_start``: max_power, a predicted power in (0, 1), or null (counts only)."""

    nullable = True

    @property
    def allowed(self) -> str:
        return "max_power, or a predicted power strictly between 0 and 1"

    def convert(self, value: object) -> object:
        if value == "max_power":
            return value
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise Refused
        return float(value)


NAMES = ListOf(Text(), min_length=0, what="a list of column names, e.g. [age,sex]")
SUBGROUPS = ("age", "sex", "category")

RULES: dict[str, Rule] = {
    "experiment_name": Text(),
    "seed": WholeNumber(0),
    "calls.name": Text(),
    "calls.path": ExistingPath("file"),
    "calls.date_column": Text(
        nullable=True, what="a column name (null: no dates, with calls.split=random|group)"
    ),
    "calls.target.column": Text(nullable=True, what="a 0/1 column name"),
    "calls.target.expression": Text(nullable=True, what="an expression over columns"),
    "calls.filter": Text(nullable=True, what="an expression over columns"),
    "calls.features.categorical": ListOf(Text(), min_length=0, nullable=True, what="a list of column names"),
    "calls.features.numeric": ListOf(Text(), min_length=0, nullable=True, what="a list of column names"),
    "calls.features.time": ListOf(
        Choice(TIME_FEATURES), min_length=0, what=f"a list of {', '.join(TIME_FEATURES)} (or [])"
    ),
    "calls.exclude": NAMES,
    "calls.oracle_column": Text(nullable=True, what="a column name"),
    "calls.never_remote": MappingOf(
        ListOf(Text(), min_length=1, what="a non-empty list of values, e.g. [C1]"),
        nullable=True,
        what="a mapping {column: [values]}, e.g. {category:[C1]}, or null for no hard rules",
    ),
    "calls.subgroups": MappingOf(
        Text(nullable=True), what="a mapping {age: column, sex: column, category: column} (null: none)"
    ),
    "split.calibration_fraction": probability(),
    "split.test_fraction": probability(),
    "split.calibration_start": IsoDate(),
    "split.test_start": IsoDate(),
    "tuning.enabled": Flag(),
    "tuning.n_splits": WholeNumber(2, 20, unit="folds"),
    "tuning.max_rows": WholeNumber(100, nullable=True, unit="calls"),
    "tuning.scoring": Choice(
        tuple(sorted(get_scorer_names())), what="a scikit-learn scorer name, e.g. neg_log_loss or roc_auc"
    ),
    "calibration.method": Choice(METHODS),
    "calibration.isotonic_min_rows": WholeNumber(1, unit="calls"),
    "safety.limit": probability(),
    "safety.confidence": probability(),
    "safety.two_sided": Flag(),
    "safety.delta": probability(),
    "safety.confirm_power": probability(nullable=True),
    "safety.grid": WholeNumber(2, nullable=True, unit="candidate thresholds"),
    "safety.plan_start": PlanStart(),
    "safety.subgroup_thresholds": Flag(),
    "safety.subgroup_confirm_power": probability(nullable=True),
    "safety.subgroup_control": Choice(("joint", "per_level")),
    "safety.start_fractions": ListOf(
        Number(0, 1, low_open=True), what="a non-empty list of fractions in (0, 1]"
    ),
    "safety.start_shares": ListOf(
        Number(0, 1, low_open=True), what="a non-empty list of shares of delta in (0, 1]"
    ),
    "baseline_enabled": Flag(),
    "baseline_max_rows": WholeNumber(100, nullable=True, unit="calls"),
    "reasons.top_k": WholeNumber(1, unit="features"),
    "reasons.exact_max_rows": WholeNumber(0, unit="calls"),
    "reasons.table_calls": WholeNumber(1, unit="calls"),
    "report.age_bands": ListOf(
        WholeNumber(0, 120),
        increasing=True,
        what="a non-empty list of increasing whole ages from 0 to 120 (lower edges), e.g. [0,18,65,85]",
    ),
    "report.calibration_bins": WholeNumber(2, 100, unit="bins"),
    "oracle_targets.auc_tolerance": Number(0, 1),
    "oracle_targets.share_ratio": Number(0, 1, low_open=True),
    # Last: it interpolates other groups (data.name, calls.name, population.name) checked above.
    "registry.model_name": Text(),
}

# Settings only some calls groups have (the plausibility screen of call records).
OPTIONAL_RULES: dict[str, Rule] = {
    "calls.checks": MappingOf(nullable=True, what="a mapping {age_column, max_age, earliest_date}"),
    "calls.checks.age_column": Text(nullable=True, what="a column name"),
    "calls.checks.max_age": Number(0, 150, low_open=True, what="an age in years"),
    "calls.checks.earliest_date": IsoDate(nullable=False),
    "calls.checks.allow_unmatched_rules": Flag(),
    "calls.split": Choice(SPLITS),
    "calls.split_group": Text(nullable=True, what="a column name, e.g. hospital"),
    "calls.allow_columns": NAMES,
    "model_choice.metric": Choice(tuple(METRICS)),
    "model_choice.prefer_simpler": Flag(),
    "model_choice.se_at_fit_size": Flag(),
}

HINTS = {
    "calls.path": "the CSV or Parquet file of call records, e.g. calls.path=my_calls.parquet",
    "calls.date_column": "the column with each call's date and time, e.g. calls.date_column=received",
    "calls.never_remote": (
        "the hard rules, calls never recommended for remote closure whatever the model says, e.g. "
        "'calls.never_remote={category:[C1]}' (calls.never_remote=null for none, not advised)"
    ),
}

_SHARE_OPEN_RIGHT = Number(0, 1, low_open=True)  # (0, 1]
# Hyperparameters by estimator class, as scikit-learn or LightGBM would refuse them only after the
# data is read. Values of a class's tuning grid (classifier.search) are checked by the same rules.
ESTIMATOR_RULES: dict[str, dict[str, Rule]] = {
    "lightgbm.LGBMClassifier": {
        "n_estimators": WholeNumber(1),
        "learning_rate": Number(0, low_open=True),
        "num_leaves": WholeNumber(2, 131072),
        "max_depth": WholeNumber(),
        "min_child_samples": WholeNumber(0),
        "min_child_weight": Number(0),
        "subsample": _SHARE_OPEN_RIGHT,
        "subsample_freq": WholeNumber(0),
        "colsample_bytree": _SHARE_OPEN_RIGHT,
        "max_bin": WholeNumber(2),
        "reg_lambda": Number(0),
        "reg_alpha": Number(0),
        "min_split_gain": Number(0),
        "n_jobs": WholeNumber(),
        "random_state": WholeNumber(0, nullable=True),
        "verbose": WholeNumber(),
    },
    "sklearn.linear_model.LogisticRegression": {
        "C": Number(0, low_open=True),
        "max_iter": WholeNumber(1),
        "tol": Number(0, low_open=True),
        "l1_ratio": Number(0, 1, nullable=True),
        "random_state": WholeNumber(0, nullable=True),
    },
}


def check_config(cfg: DictConfig) -> None:
    """Refuse the first impossible value of the remote-closure config.

    Raises
    ------
    ConfigError
        One line naming the key, the value and what is allowed.
    """
    values = check_all(cfg, RULES, HINTS)
    column, expression = values["calls.target.column"], values["calls.target.expression"]
    if bool(column) == bool(expression):
        raise ConfigError(
            f"calls.target.column={shown(column)} and calls.target.expression={shown(expression)}: exactly "
            "one must be set, a 0/1 column (1 = safely closed remotely) or an expression such as "
            "'closed_remotely == 1 and adverse_outcome == 0'"
        )
    unknown = set(values["calls.subgroups"]) - set(SUBGROUPS)
    if unknown:
        key = f"calls.subgroups.{sorted(unknown)[0]}"
        raise ConfigError(f"{key} is not a subgroup the report knows; use {', '.join(SUBGROUPS)}")
    cal, test = values["split.calibration_fraction"], values["split.test_fraction"]
    if cal + test >= 0.9:
        raise ConfigError(
            f"split.calibration_fraction={cal:g} + split.test_fraction={test:g} = {cal + test:g}: must be "
            "below 0.9, leaving at least 10 % of calls to train on"
        )
    fractions, shares = values["safety.start_fractions"], values["safety.start_shares"]
    if len(fractions) != len(shares) or sum(shares) > 1 + 1e-9:
        raise ConfigError(
            f"safety.start_fractions={shown(fractions)} and safety.start_shares={shown(shares)}: one share "
            "of delta per planned start, the shares summing to at most 1 (e.g. [1.0] and [1.0])"
        )
    bands = values["report.age_bands"]
    if bands[0] != 0:  # younger callers would be reported as "missing" age
        raise refuse("report.age_bands", bands, "lower edges starting at 0, e.g. [0,18,65,85]")
    start_cal, start_test = values["split.calibration_start"], values["split.test_start"]
    if start_cal is not None and start_test is not None and not start_cal < start_test:
        raise ConfigError(
            f"split.calibration_start={shown(lookup(cfg, 'split.calibration_start'))} must be before "
            f"split.test_start={shown(lookup(cfg, 'split.test_start'))}"
        )
    optional = check_all(cfg, OPTIONAL_RULES, optional=True)
    kind = optional.get("calls.split", "temporal")
    dated = [key for key in ("split.calibration_start", "split.test_start") if values[key] is not None]
    if kind != "temporal" and dated:
        raise ConfigError(
            f"{dated[0]}={shown(lookup(cfg, dated[0]))} is a date: it applies only to calls.split=temporal, "
            f"not calls.split={kind} (leave it null; split.*_fraction share out the calls)"
        )
    read = lookup(cfg, "calls.read", default=None)
    check_read_options(cfg, "calls.read")
    ReadOptions.from_config(OmegaConf.to_container(read, resolve=True) if read else None, "calls.read")
    CallSpec.from_config(OmegaConf.to_container(cfg.calls, resolve=True))  # its cross-checks
    auto = str(lookup(cfg, "classifier.name", default="")) == "auto"  # compares classifier with baseline
    groups = ["classifier", "baseline"] if values["baseline_enabled"] or auto else ["classifier"]
    for group in groups:
        if lookup(cfg, group, default=None) is None:
            other = "lightgbm or logistic" + ("" if group == "classifier" else " (or baseline_enabled=false)")
            raise ConfigError(f"{group} is required: choose one with {group}={other}")
        check_classifier(cfg, group)
    if auto:
        _check_auto(cfg)
    check_tracking(cfg)


def _check_auto(cfg: DictConfig) -> None:
    """classifier=auto compares LightGBM (classifier.estimator) with the logistic regression (baseline)."""
    tree = _same_class(
        "lightgbm.LGBMClassifier", _import_class(str(lookup(cfg, "classifier.estimator._target_")))
    )
    linear = _import_class(str(lookup(cfg, "baseline.estimator._target_"))) is LogisticRegression
    if not (tree and linear):
        raise ConfigError(
            "classifier=auto compares LightGBM (classifier.estimator) with the logistic regression in "
            "baseline; keep both (classifier@baseline=logistic), or force one model with "
            "classifier=lightgbm or classifier=logistic"
        )


def check_classifier(cfg: DictConfig, key: str) -> None:
    """The classifier group at ``key``: an importable estimator, its hyperparameters, its grid."""
    Text().check(cfg, f"{key}.name")
    # Only some classifiers cap their final fit (classifier/logistic.yaml); absent means every call.
    check_all(cfg, {f"{key}.max_rows": WholeNumber(100, nullable=True, unit="calls")}, optional=True)
    estimator = lookup(cfg, f"{key}.estimator")
    if not isinstance(estimator, DictConfig | Mapping) or not estimator.get("_target_"):
        raise refuse(
            f"{key}.estimator", estimator, "an estimator config with a _target_, e.g. classifier=lightgbm"
        )
    target = str(estimator["_target_"])
    try:
        cls = _import_class(target)
    except Exception:  # noqa: BLE001 - an import can fail in many ways; all mean a wrong _target_
        raise ConfigError(
            f"{key}.estimator._target_={target}: not a class that can be imported; choose one with "
            f"{key}=lightgbm or {key}=logistic"
        ) from None
    if not (hasattr(cls, "fit") and hasattr(cls, "predict_proba")):
        raise ConfigError(
            f"{key}.estimator._target_={target}: not a classifier with probabilities (fit and "
            f"predict_proba); choose one with {key}=lightgbm or {key}=logistic"
        )
    known = _parameters(cls)
    for name in estimator:
        if not str(name).startswith("_") and known is not None and name not in known:
            raise ConfigError(f"{key}.estimator.{name} is not a parameter of {cls.__name__}")
    rules = next((r for name, r in ESTIMATOR_RULES.items() if _same_class(name, cls)), {})
    for name, rule in rules.items():
        if name in estimator:
            rule.check(cfg, f"{key}.estimator.{name}")
    grid = lookup(cfg, f"{key}.search", default=None)
    if grid is None:
        return
    if not isinstance(grid, DictConfig | Mapping):
        raise refuse(f"{key}.search", grid, "a mapping {parameter: [values to try]}, or null")
    for name in grid:
        grid_key = f"{key}.search.{name}"
        if known is not None and name not in known:
            raise ConfigError(f"{grid_key} is not a parameter of {cls.__name__}")
        item = rules.get(str(name)) or _Anything()
        ListOf(item, what=f"a non-empty list of values to try, each {item.allowed}").check(cfg, grid_key)


class _Anything(Rule):
    """Any single value (a grid over a parameter the toolkit has no rule for)."""

    @property
    def allowed(self) -> str:
        return "a value"

    def convert(self, value: object) -> object:
        return value


def _import_class(target: str) -> type:
    module, _, name = target.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if not isinstance(cls, type):
        raise TypeError(f"{target} is not a class")
    return cls


def _same_class(name: str, cls: type) -> bool:
    try:
        return _import_class(name) is cls
    except Exception:  # noqa: BLE001 - an optional library missing means it is not this class
        return False


def _parameters(cls: type) -> list[str] | None:
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        # LightGBM takes **kwargs (any native parameter): only its named ones can be checked.
        return None
    return [name for name in parameters if name != "self"]
