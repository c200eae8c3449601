"""Every config value is checked before work starts: one line naming the key, the value and what is
allowed, for each of the three apps; no run, no file read."""

from __future__ import annotations

import copy
import subprocess
import sys

import pandas as pd
import pytest
from omegaconf import DictConfig, OmegaConf

from disposition.config_checks import check_config as check_disposition
from forecasting.backtest import rolling_origin_backtest
from forecasting.config_checks import check_config as check_forecast
from forecasting.config_checks import check_generate_config as check_generate
from forecasting.models import BacktestConformal, Ensemble, GlobalLightGBM, SeasonalNaive
from forecasting.projection.config_checks import check_config as check_projection
from mlops.config_checks import IsoDate, ListOf, Number, WholeNumber
from mlops.errors import ConfigError
from mlops.tracking import resolve_store
from tests.conftest import ROOT, compose_config

CHECKS = {
    "forecast": check_forecast,
    "disposition": check_disposition,
    "project": check_projection,
    "generate": check_generate,
}
OWN_CALLS = ["calls=csv", "calls.path=data/synthetic/calls.parquet", "calls.date_column=call_time"]

# (config, overrides, key the message must start with, value it must show or None)
BAD_VALUES = [
    # forecasting: backtest protocol
    ("forecast", ["backtest.horizon=7.5"], "backtest.horizon", "7.5"),
    ("forecast", ["backtest.horizon=abc"], "backtest.horizon", "abc"),
    ("forecast", ["backtest.horizon=true"], "backtest.horizon", "true"),
    ("forecast", ["backtest.horizon=0"], "backtest.horizon", "0"),
    ("forecast", ["backtest.n_origins=-2"], "backtest.n_origins", "-2"),
    ("forecast", ["backtest.step=1.5"], "backtest.step", "1.5"),
    ("forecast", ["backtest.season_length=0"], "backtest.season_length", "0"),
    ("forecast", ["backtest.first_cutoff=31/12/2018"], "backtest.first_cutoff", "31/12/2018"),
    (
        "forecast",
        ["backtest.first_cutoff=2021-01-01", "data.train_end=2020-01-01"],
        "backtest.first_cutoff",
        "2021-01-01",
    ),
    # forecasting: intervals and serving
    ("forecast", ["levels=[]"], "levels", "[]"),
    ("forecast", ["levels=80"], "levels", "80"),
    ("forecast", ["levels=[0]"], "levels", "[0]"),
    ("forecast", ["levels=[100]"], "levels", "[100]"),
    ("forecast", ["levels=[abc]"], "levels", "[abc]"),
    ("forecast", ["levels=[80,99.5]"], "levels", "[80,99.5]"),
    ("forecast", ["serving.max_horizon=0"], "serving.max_horizon", "0"),
    ("forecast", ["plot.n_series=many"], "plot.n_series", "many"),
    # forecasting: data
    ("forecast", ["data=csv"], "data.path is required", None),
    ("forecast", ["data.path=no_such_counts.csv"], "data.path", "no_such_counts.csv"),
    ("forecast", ["data.path=data"], "data.path", "data"),
    ("forecast", ["data.train_end=notadate"], "data.train_end", "notadate"),
    ("forecast", ["data.fill_missing=abc"], "data.fill_missing", "abc"),
    ("forecast", ["data.fill_missing=-1"], "data.fill_missing", "-1"),
    ("forecast", ["data.records=yes"], "data.records", "yes"),
    ("forecast", ["data.exclude_series=OOA"], "data.exclude_series", "OOA"),
    ("forecast", ["data.columns.ds=y"], "data.columns", None),
    # forecasting: the reader's options and the plausibility screen
    ("forecast", ["data.read.encoding=klingon"], "data.read.encoding", None),
    ("forecast", ["data.checks.median_floor=-1"], "data.checks.median_floor", "-1"),
    # forecasting: model hyperparameters, members and wrapped models included
    ("forecast", ["model=lightgbm", "model.learning_rate=-1"], "model.learning_rate", "-1"),
    ("forecast", ["model=lightgbm", "model.n_estimators=0"], "model.n_estimators", "0"),
    ("forecast", ["model=lightgbm", "model.n_estimators=10.5"], "model.n_estimators", "10.5"),
    ("forecast", ["model=lightgbm", "model.num_leaves=1"], "model.num_leaves", "1"),
    ("forecast", ["model=lightgbm", "model.lambda_l2=-0.1"], "model.lambda_l2", "-0.1"),
    ("forecast", ["model=lightgbm", "model.feature_fraction=0"], "model.feature_fraction", "0"),
    ("forecast", ["model=lightgbm", "model.nation=france"], "model.nation", "france"),
    (
        "forecast",
        ["model=ensemble", "+model.members.0.learning_rate=-1"],
        "model.members[0].learning_rate",
        "-1",
    ),
    ("forecast", ["model=ensemble", "model.combine=max"], "model.combine", "max"),
    ("forecast", ["model=ensemble", "model.weights=[1]"], "model.weights", "[1]"),
    ("forecast", ["model=ensemble", "model.members=[]"], "model.members", "[]"),
    ("forecast", ["model.candidates.lightgbm.num_leaves=1"], "model.candidates.lightgbm.num_leaves", "1"),
    ("forecast", ["model.candidates.ets=null"], "model.candidates.ets", None),
    ("forecast", ["model.combinations=[best]"], "model.combinations", "[best]"),
    ("forecast", ["model.max_members=1"], "model.max_members", "1"),
    ("forecast", ["model.n_origins=0"], "model.n_origins", "0"),
    ("forecast", ["model.levels=[100]"], "model.levels", "[100]"),
    ("forecast", ["model.recalibrate=maybe"], "model.recalibrate", "maybe"),
    ("forecast", ["+model.n_trees=5"], "model.n_trees", None),
    ("forecast", ["model=conformal", "model.model.num_leaves=1"], "model.model.num_leaves", "1"),
    ("forecast", ["model=conformal", "model.n_windows=0"], "model.n_windows", "0"),
    ("forecast", ["model=glm", "model.power=0.5"], "model.power", "0.5"),
    ("forecast", ["model=glm", "model.alpha=-1"], "model.alpha", "-1"),
    ("forecast", ["model=ets", "model.season_length=1"], "model.season_length", "1"),
    ("forecast", ["model=ets", "model.damped_trend=maybe"], "model.damped_trend", "maybe"),
    ("forecast", ["model=arima", "model.order=[1,1]"], "model.order", "[1,1]"),
    ("forecast", ["model=seasonal_naive", "model.season_length=0"], "model.season_length", "0"),
    ("forecast", ["model._target_=no.such.Model"], "model._target_", "no.such.Model"),
    ("forecast", ["model=seasonal_naive", "model._target_=builtins.dict"], "model._target_", "builtins.dict"),
    # forecasting: tracking
    ("forecast", ["tracking.store_dir=README.md"], "tracking.store_dir", "README.md"),
    ("forecast", ["tracking.store_dir=README.md/mlruns"], "tracking.store_dir", "README.md/mlruns"),
    ("forecast", ["tracking.uri=localhost"], "tracking.uri", "localhost"),
    # disposition: own call records
    ("disposition", ["calls=csv"], "calls.path is required", None),
    (
        "disposition",
        [
            "calls=csv",
            "calls.path=data/synthetic/calls.parquet",
            "calls.target.column=safe_remote",
            "calls.never_remote=null",
        ],
        "calls.date_column is required with calls.split=temporal",
        None,
    ),
    (
        "disposition",
        [*OWN_CALLS, "calls.target.column=safe_remote"],
        "calls.never_remote is required",
        None,
    ),
    ("disposition", [*OWN_CALLS, "calls.never_remote={}"], "calls.target.column", "null"),
    ("disposition", ["calls.path=data"], "calls.path", "data"),
    ("disposition", ["calls.never_remote={category:C1}"], "calls.never_remote.category", "C1"),
    ("disposition", ["calls.features.time=[minute]"], "calls.features.time", "[minute]"),
    ("disposition", ["calls.checks.max_age=abc"], "calls.checks.max_age", "abc"),
    ("disposition", ["calls.checks.earliest_date=01/01/1900"], "calls.checks.earliest_date", "01/01/1900"),
    ("disposition", ["calls.read.decimal=ab"], "calls.read.decimal", None),
    # disposition: split, tuning, calibration, safety, report
    ("disposition", ["split.calibration_fraction=0"], "split.calibration_fraction", "0"),
    ("disposition", ["split.test_fraction=1.2"], "split.test_fraction", "1.2"),
    (
        "disposition",
        ["split.calibration_fraction=0.5", "split.test_fraction=0.5"],
        "split.calibration_fraction",
        "0.5",
    ),
    ("disposition", ["split.test_start=notadate"], "split.test_start", "notadate"),
    (
        "disposition",
        ["split.calibration_start=2023-06-01", "split.test_start=2023-01-01"],
        "split.calibration_start",
        "2023-06-01",
    ),
    ("disposition", ["tuning.n_splits=1"], "tuning.n_splits", "1"),
    ("disposition", ["tuning.scoring=accuracyy"], "tuning.scoring", "accuracyy"),
    ("disposition", ["calibration.method=platt"], "calibration.method", "platt"),
    ("disposition", ["safety.limit=1.5"], "safety.limit", "1.5"),
    ("disposition", ["safety.limit=0"], "safety.limit", "0"),
    ("disposition", ["safety.confidence=abc"], "safety.confidence", "abc"),
    ("disposition", ["safety.two_sided=2"], "safety.two_sided", "2"),
    ("disposition", ["report.age_bands=[0,65,18]"], "report.age_bands", "[0,65,18]"),
    ("disposition", ["report.age_bands=[-1,18]"], "report.age_bands", "[-1,18]"),
    ("disposition", ["report.age_bands=[18,65]"], "report.age_bands", "[18,65]"),
    ("disposition", ["report.calibration_bins=1"], "report.calibration_bins", "1"),
    ("disposition", ["reasons.top_k=0"], "reasons.top_k", "0"),
    ("disposition", ["seed=abc"], "seed", "abc"),
    # disposition: classifiers and their tuning grids
    ("disposition", ["classifier.estimator.learning_rate=-1"], "classifier.estimator.learning_rate", "-1"),
    ("disposition", ["classifier.estimator.subsample=1.5"], "classifier.estimator.subsample", "1.5"),
    ("disposition", ["classifier.search.num_leaves=[1,15]"], "classifier.search.num_leaves", "[1,15]"),
    ("disposition", ["baseline.estimator.C=0"], "baseline.estimator.C", "0"),
    ("disposition", ["baseline.search.C=[]"], "baseline.search.C", "[]"),
    ("disposition", ["+baseline.estimator.penalty_typo=l2"], "baseline.estimator.penalty_typo", None),
    (
        "disposition",
        ["classifier.estimator._target_=sklearn.linear_model.LinearRegression"],
        "classifier.estimator._target_",
        "sklearn.linear_model.LinearRegression",
    ),
    # projection: settings
    ("project", ["base_year=abc"], "base_year", "abc"),
    ("project", ["base_year=2025.5"], "base_year", "2025.5"),
    ("project", ["horizon_years=0"], "horizon_years", "0"),
    ("project", ["n_paths=0"], "n_paths", "0"),
    ("project", ["quantiles=[0.9,0.1]"], "quantiles", "[0.9,0.1]"),
    ("project", ["quantiles=[0.1,1.0]"], "quantiles", "[0.1,1.0]"),
    ("project", ["peak_quantile=1"], "peak_quantile", "1"),
    ("project", ["population_sd=-0.1"], "population_sd", "-0.1"),
    ("project", ["seed=1.5"], "seed", "1.5"),
    # projection: inputs and method
    ("project", ["population=csv"], "population.path is required", None),
    ("project", ["population.path=missing_population.csv"], "population.path", "missing_population.csv"),
    ("project", ["history.counts_path=data/synthetic"], "history.counts_path", "data/synthetic"),
    ("project", ["population.areas={trust:-5}"], "population.areas.trust", "-5"),
    ("project", ["rates.source=guess"], "rates.source", "guess"),
    ("project", ["population.columns.year=area"], "population.columns", None),
    ("project", ["rates.trend_per_year=0.5"], "rates.trend_per_year", "0.5"),
    ("project", ["daily_shape.fit_on=each"], "daily_shape.fit_on", "each"),
    ("project", ["backtest.fit_through=last"], "backtest.fit_through", "last"),
    ("project", ["history.checks.max_ratio_to_median=0.5"], "history.checks.max_ratio_to_median", "0.5"),
    ("project", ["population.read.sep="], "population.read.sep", None),
    # projection: scenarios, the headline and those compared
    ("project", ["scenario.remote_closure.end_share=1.5"], "scenario.remote_closure.end_share", "1.5"),
    ("project", ["scenario.remote_closure.end_year=1990"], "scenario.remote_closure.end_year", "1990"),
    ("project", ["scenario.category_mix.C1=0.5"], "scenario.category_mix", None),
    ("project", ["compare.high_ageing.ageing={85+:abc}"], "compare.high_ageing.ageing.85+", "abc"),
    ("project", ["scenario.rate_trend_per_year=0.5"], "scenario.rate_trend_per_year", "0.5"),
    ("project", ["tracking.store_dir=README.md"], "tracking.store_dir", "README.md"),
    # the synthetic world (forecasting.generate)
    ("generate", ["world.seed=abc"], "world.seed", "abc"),
    ("generate", ["world.end=2017-01-01"], "world.end", "2017-01-01"),
    ("generate", ["world.areas.0.population=-1"], "world.areas[0].population", "-1"),
    ("generate", ["+world.areas.0.size=1"], "world.areas[0].size", None),
    ("generate", ["+world.typo=1"], "world.typo", None),
    ("generate", ["world.temperature.autocorrelation=1"], "world.temperature.autocorrelation", "1"),
    ("generate", ["world.weekday_factor.Mon=x"], "world.weekday_factor.Mon", "x"),
    ("generate", ["population_path=missing_npp.csv"], "population_path", "missing_npp.csv"),
]


@pytest.mark.parametrize(
    "config, overrides, key, value",
    BAD_VALUES,
    ids=[f"{c}:{' '.join(o)}" for c, o, _, _ in BAD_VALUES],
)
def test_a_bad_value_is_one_line_naming_key_and_value(config, overrides, key, value):
    cfg = compose_config(config, overrides)
    with pytest.raises(ConfigError) as info:
        CHECKS[config](cfg)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(key), message
    if value is not None:
        assert f"{key}={value}" in message, message
    # ... and says what is allowed or what to give instead
    assert any(word in message for word in ("must", "required", "no such", "give a", "not a")), message


@pytest.mark.parametrize(
    "config, overrides",
    [
        ("forecast", []),
        *[
            ("forecast", [f"model={name}"])
            for name in ("seasonal_naive", "lightgbm", "glm", "ets", "arima", "ensemble")
        ],
        ("forecast", ["model=conformal", "levels=[50,80,95]", "backtest.first_cutoff=2021-01-04"]),
        ("forecast", ["data=swast", "data.train_end=2019-06-30", "data.fill_missing=0"]),
        ("disposition", []),
        ("disposition", ["classifier=logistic", "split.test_start=2023-07-01", "tuning.max_rows=null"]),
        ("disposition", [*OWN_CALLS, "calls.target.column=safe_remote", "calls.never_remote={}"]),
        ("project", []),
        ("project", ["scenario=high_ageing", "rates.source=config", "population.areas=null"]),
        ("generate", []),
        ("generate", ["world.temperature.enabled=true"]),
    ],
)
def test_shipped_configs_and_sound_overrides_pass(config, overrides):
    CHECKS[config](compose_config(config, overrides))


def test_forecast_check_returns_sorted_levels():
    assert check_forecast(compose_config("forecast", ["levels=[95,80,80]"])).levels == [80, 95]


@pytest.mark.parametrize(
    "rule, good, bad",
    [
        (WholeNumber(1), [7, 7.0], [7.5, "7", "abc", True, 0, None, float("inf")]),
        (Number(0, low_open=True), [0.5, 3, 1e-3], [0, -1, "1e-3", "abc", False, float("nan"), float("inf")]),
        (IsoDate(nullable=False), ["2020-01-31", "2020-01-31T08:00"], ["notadate", "31/01/2020", 20200131]),
        (ListOf(WholeNumber(1, 99), increasing=True), [[80], [80, 95]], [[], 80, [95, 80], ["abc"]]),
    ],
)
def test_rules_accept_and_refuse(rule, good, bad):
    for value in good:
        rule.apply(value, "key")
    for value in bad:
        with pytest.raises(ConfigError, match=r"^key="):
            rule.apply(value, "key")


@pytest.mark.parametrize("uri", ["mlruns", "localhost:5000", "htp://host:5000"])
def test_resolve_store_refuses_a_uri_mlflow_has_no_store_for(uri):
    with pytest.raises(ConfigError, match=f"tracking.uri={uri}: must be an address with its scheme"):
        resolve_store(compose_config("forecast", [f"tracking.uri={uri}"]).tracking)


@pytest.mark.parametrize(
    "uri", ["http://host:5000", "https://mlflow.example.org", "postgresql+psycopg2://u@h/db"]
)
def test_resolve_store_takes_server_and_database_uris(uri):
    assert resolve_store(compose_config("forecast", [f"tracking.uri='{uri}'"]).tracking).tracking_uri == uri


def test_resolve_store_refuses_a_file(tmp_path):
    store = tmp_path / "mlruns"
    store.write_text("not a folder")
    cfg = compose_config("forecast", [f"tracking.store_dir={store}"])
    with pytest.raises(ConfigError, match="is a file; give a folder for the MLflow store"):
        resolve_store(cfg.tracking)


def _with_short_series(small_counts: pd.DataFrame, days: int) -> pd.DataFrame:
    start = small_counts["ds"].min()
    tiny = pd.DataFrame({"unique_id": "Tiny", "ds": pd.date_range(start, periods=days), "y": 5.0})
    return pd.concat([small_counts[["unique_id", "ds", "y"]], tiny], ignore_index=True)


def test_a_too_short_series_is_named_with_the_days_needed_and_the_fixes(small_counts):
    data = _with_short_series(small_counts, 3)
    with pytest.raises(ConfigError) as info:
        rolling_origin_backtest(SeasonalNaive(), data, 28, 6, 14, [80], progress=False)
    message = str(info.value)
    assert "'Tiny' has 3 day(s)" in message and "at least 28" in message
    assert "126 days of data per series" in message  # 28 + 28 + 5 x 14
    for fix in ("backtest.horizon", "backtest.n_origins", "data.exclude_series=[Tiny]"):
        assert fix in message


def test_the_history_a_model_needs_is_checked_before_its_first_fit(small_counts):
    lightgbm = GlobalLightGBM(calibration_days=182)  # needs 2 x 182 + 28 = 392 days per series
    ensemble = Ensemble([SeasonalNaive(), lightgbm])
    conformal = BacktestConformal(SeasonalNaive(), n_windows=4, step=28, horizon=84)
    assert ensemble.min_history_days() == 392
    assert conformal.min_history_days() == 28 + 84 + 3 * 28
    data = _with_short_series(small_counts, 300)
    with pytest.raises(ConfigError) as info:  # refused before LightGBM is fitted at all
        rolling_origin_backtest(ensemble, data, 28, 2, 14, [80], progress=False)
    message = str(info.value)
    assert "'Tiny' has 300 day(s)" in message and "(the model needs 392)" in message
    assert "model.calibration_days" in message and "data.exclude_series=[Tiny]" in message


def test_season_length_zero_is_refused_not_a_broadcast_error(small_counts):
    with pytest.raises(ConfigError, match="season_length=0"):
        rolling_origin_backtest(SeasonalNaive(), small_counts, 7, 2, 7, [80], season_length=0, progress=False)


@pytest.mark.parametrize(
    "module, overrides, expected",
    [
        (
            "forecasting.train",
            ["backtest.horizon=abc"],
            "error: backtest.horizon=abc: must be a whole number",
        ),
        # The other two apps share the entry-point wrapper; their checks are proved above in-process.
        pytest.param(
            "disposition.train", ["calls=csv"], "error: calls.path is required", marks=pytest.mark.slow
        ),
        pytest.param(
            "forecasting.project",
            ["base_year=abc"],
            "error: base_year=abc: must be a year",
            marks=pytest.mark.slow,
        ),
    ],
)
def test_cli_prints_one_line_and_exits_2(tmp_path, module, overrides, expected):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            module,
            *overrides,
            f"tracking.store_dir={tmp_path / 'store'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith(expected), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "store").exists()  # refused before the store was created


def _leaf_keys(node, prefix: str = "") -> list[str]:
    """Dotted keys of a config's values and blocks (a list counts as one value), Hydra's left out."""
    keys = []
    for name in node.keys():
        key = f"{prefix}{name}"
        keys.append(key)
        child = node._get_node(name)
        if isinstance(child, DictConfig) and not OmegaConf.is_missing(node, name):
            keys += _leaf_keys(child, f"{key}.")
    return [key for key in keys if not key.startswith("hydra.")]


@pytest.mark.slow
@pytest.mark.parametrize("config", list(CHECKS))
def test_any_value_of_any_key_is_accepted_or_refused_in_one_line(config):
    """The class of problem, not the listed cases: every key and block set to values of the wrong kind."""
    base = compose_config(config, [])
    OmegaConf.set_struct(base, False)
    for key in _leaf_keys(base):
        for value in (None, "abc", -1, 1.5, [], {}, True, 10**12):
            cfg = copy.deepcopy(base)
            OmegaConf.update(cfg, key, value, merge=False)
            try:
                CHECKS[config](cfg)
            except ConfigError as error:
                message = str(error)
                assert "\n" not in message and key.split(".")[-1] in message, (key, value, message)
