"""Bad Hydra overrides through the three jobs: wrong types, ranges, combinations, missing keys.

Every value is refused before work starts, in one line that names the key, the value and what is
allowed. Overrides of keys or config options that do not exist are refused by Hydra while
composing (``hydra_may_refuse``), which names the key itself.
"""

from __future__ import annotations

import pytest

from tests.corpus.harness import Case, check, run_case, text_file


def _file(tmp):
    """A regular file where a folder is expected."""
    return text_file("not a folder\n", name="store_is_a_file")(tmp)


def config(case_id: str, app: str, overrides: list[str], key: str, *more: str, **options) -> Case:
    """A case whose message must name ``key`` (a regex) and match every pattern in ``more``."""
    return Case(case_id, app, overrides, [key, *more], **options)


RANGE = r"must|allowed|between|at least|positive|greater|> ?0|>= ?1|integer|whole"

FORECAST = [
    # named in issue 10
    config(
        "forecast-horizon-7.5",
        "forecast",
        ["backtest.horizon=7.5"],
        r"backtest\.horizon",
        r"7\.5",
        r"integer|whole",
    ),
    config(
        "forecast-horizon-abc",
        "forecast",
        ["backtest.horizon=abc"],
        r"backtest\.horizon",
        r"abc",
        r"integer|whole|number",
    ),
    config("forecast-levels-empty", "forecast", ["levels=[]"], r"levels", r"empty|at least one|non-empty"),
    config("forecast-levels-80", "forecast", ["levels=80"], r"levels", r"list|\[80\]"),
    config(
        "forecast-fill-missing-abc",
        "forecast",
        ["data.fill_missing=abc"],
        r"data\.fill_missing",
        r"abc",
        r"number|null",
    ),
    config(
        "forecast-train-end-notadate",
        "forecast",
        ["data.train_end=notadate"],
        r"data\.train_end",
        r"notadate",
        r"date|YYYY",
    ),
    config(
        "forecast-learning-rate-negative",
        "forecast",
        ["model=lightgbm", "model.learning_rate=-1"],
        r"learning_rate",
        r"-1",
        r"> ?0|positive|greater",
    ),
    config(
        "forecast-calendar-nation-france",
        "forecast",
        ["calendar.nation=france"],
        r"calendar\.nation",
        r"france",
        r"england|wales",
    ),
    config(
        "forecast-auto-inner-origins-zero",
        "forecast",
        ["model=auto", "model.n_origins=0"],
        r"model\.n_origins",
        r"0",
        RANGE,
    ),
    config(
        "forecast-no-data-path",
        "forecast",
        [],
        r"data\.path",
        r"set|give|missing|needs|required",
        drop=["data.path"],
    ),
    config(
        "forecast-store-dir-is-a-file",
        "forecast",
        ["tracking.store_dir={file}"],
        r"tracking\.store_dir",
        r"file|folder|director",
        file=_file,
    ),
    # the class beyond them
    config("forecast-horizon-0", "forecast", ["backtest.horizon=0"], r"backtest\.horizon", RANGE),
    config(
        "forecast-horizon-negative", "forecast", ["backtest.horizon=-3"], r"backtest\.horizon", r"-3", RANGE
    ),
    config("forecast-n-origins-0", "forecast", ["backtest.n_origins=0"], r"backtest\.n_origins", RANGE),
    config("forecast-step-0", "forecast", ["backtest.step=0"], r"backtest\.step", RANGE),
    config("forecast-season-length-0", "forecast", ["backtest.season_length=0"], r"season_length", RANGE),
    config(
        "forecast-first-cutoff-notadate",
        "forecast",
        ["backtest.first_cutoff=notadate"],
        r"first_cutoff",
        r"date",
    ),
    config(
        "forecast-first-cutoff-after-data",
        "forecast",
        ["backtest.first_cutoff=2099-01-01"],
        r"first_cutoff",
        r"2099",
    ),
    config(
        "forecast-levels-100",
        "forecast",
        ["levels=[80,100]"],
        r"levels",
        r"100",
        r"between|\(0, ?100\)|0 and 100|below 100",
    ),
    config(
        "forecast-levels-0", "forecast", ["levels=[0]"], r"levels", r"between|\(0, ?100\)|0 and 100|above 0"
    ),
    config("forecast-levels-text", "forecast", ["levels=[abc]"], r"levels", r"abc|number"),
    config("forecast-levels-dict", "forecast", ["levels={a: 80}"], r"levels", r"list", hydra_may_refuse=True),
    config(
        "forecast-fill-missing-negative",
        "forecast",
        ["data.fill_missing=-1"],
        r"data\.fill_missing",
        r"-1",
        r">= ?0|negative",
    ),
    config(
        "forecast-train-end-before-data", "forecast", ["data.train_end=2010-01-01"], r"train_end", r"2010"
    ),
    config(
        "forecast-records-maybe", "forecast", ["data.records=maybe"], r"data\.records", r"true|false|boolean"
    ),
    config(
        "forecast-n-estimators-0",
        "forecast",
        ["model=lightgbm", "model.n_estimators=0"],
        r"n_estimators",
        RANGE,
    ),
    config(
        "forecast-num-leaves-text",
        "forecast",
        ["model=lightgbm", "model.num_leaves=many"],
        r"num_leaves",
        r"many",
    ),
    config("forecast-naive-season-0", "forecast", ["model.season_length=0"], r"season_length", RANGE),
    config("forecast-glm-power-text", "forecast", ["model=glm", "model.power=strong"], r"power", r"strong"),
    config("forecast-glm-alpha-negative", "forecast", ["model=glm", "model.alpha=-1"], r"alpha", r"-1"),
    config("forecast-max-horizon-0", "forecast", ["serving.max_horizon=0"], r"serving\.max_horizon", RANGE),
    config(
        "forecast-max-horizon-abc", "forecast", ["serving.max_horizon=abc"], r"serving\.max_horizon", r"abc"
    ),
    config("forecast-plot-series-negative", "forecast", ["plot.n_series=-1"], r"plot\.n_series", RANGE),
    config(
        "forecast-history-days-text", "forecast", ["plot.history_days=abc"], r"plot\.history_days", r"abc"
    ),
    config(
        "forecast-read-encoding-unknown", "forecast", ["data.read.encoding=klingon"], r"encoding", r"klingon"
    ),
    config(
        "forecast-read-sep-empty",
        "forecast",
        ["data.read.sep=''"],
        r"data\.read\.sep|separator",
        r"empty|character|such as|e\.g\.",
    ),
    config(
        "forecast-screen-ratio-negative",
        "forecast",
        ["data.checks.max_ratio_to_median=-2"],
        r"max_ratio_to_median",
        r"-2",
    ),
    config("forecast-columns-y-missing", "forecast", ["data.columns.y=calls"], r"calls", r"column"),
    config(
        "forecast-exclude-unknown-series",
        "forecast",
        ["data.exclude_series=[nope/C9]"],
        r"exclude_series|nope/C9",
        r"nope/C9",
    ),
    config(
        "forecast-missing-data-file",
        "forecast",
        ["data.path={tmp}/missing.csv"],
        r"missing\.csv",
        r"not found|no such|does not exist",
    ),
    config("forecast-ds-and-y-same-column", "forecast", ["data.columns.ds=y"], r"columns|ds", r"y"),
    config("forecast-keep-unknown", "forecast", ["data.keep=[weather]"], r"weather", r"column|keep"),
    config(
        "forecast-train-end-leaves-20-days",
        "forecast",
        ["data.train_end=2018-01-20"],
        r"train_end|short|days",
        r"at least|need|backtest",
    ),
    config(
        "forecast-first-cutoff-before-data",
        "forecast",
        ["backtest.first_cutoff=1990-01-01"],
        r"first_cutoff",
        r"1990",
    ),
    config(
        "forecast-horizon-1e12",
        "forecast",
        ["backtest.horizon=1e12"],
        r"backtest\.horizon",
        r"must|at most|between",
    ),
    config("forecast-levels-fraction", "forecast", ["levels=[80.5]"], r"levels", r"80\.5|whole"),
    config(
        "forecast-model-name-empty",
        "forecast",
        ["registry.model_name=''"],
        r"registry\.model_name",
        r"empty|name",
    ),
    config(
        "forecast-experiment-name-empty",
        "forecast",
        ["experiment_name=''"],
        r"experiment_name",
        r"empty|name",
    ),
    config(
        "forecast-conformal-inner-rate",
        "forecast",
        ["model=conformal", "model.model.learning_rate=-1"],
        r"learning_rate",
        r"-1",
    ),
    config(
        "forecast-model-unknown",
        "forecast",
        ["model=prophet_magic"],
        r"prophet_magic|model",
        hydra_may_refuse=True,
    ),
    config("forecast-key-typo", "forecast", ["backtest.horizn=7"], r"horizn", hydra_may_refuse=True),
]

CSV_CALLS = "calls=csv"
DISPOSITION = [
    # named in issue 10
    config(
        "calls-csv-never-remote-omitted",
        "disposition",
        [CSV_CALLS],
        r"never_remote",
        r"\{\}|set|give|rule",
        drop=["calls.never_remote"],
    ),
    config(
        "calls-csv-no-path",
        "disposition",
        [CSV_CALLS],
        r"calls\.path",
        r"set|give|missing|needs|required",
        drop=["calls.path"],
    ),
    # the class beyond them
    config(
        "calls-csv-no-date-column",
        "disposition",
        [CSV_CALLS],
        r"date_column",
        r"set|give|missing|needs|required",
        drop=["calls.date_column"],
    ),
    config(
        "calls-date-column-unknown",
        "disposition",
        [CSV_CALLS, "calls.date_column=received"],
        r"received",
        r"column|not found|not in",
    ),
    config(
        "calls-target-column-and-expression",
        "disposition",
        [CSV_CALLS, "calls.target.expression='closed_remotely == 1'"],
        r"target",
        r"exactly one|both|one of",
    ),
    config(
        "calls-target-neither",
        "disposition",
        [CSV_CALLS, "calls.target.column=null"],
        r"target",
        r"exactly one|set|give|one of",
    ),
    config(
        "calls-target-column-unknown",
        "disposition",
        [CSV_CALLS, "calls.target.column=outcome"],
        r"outcome",
        r"column|not found|not in",
    ),
    config(
        "calls-filter-bad-expression",
        "disposition",
        ["calls.filter='age >>> 3'"],
        r"calls\.filter",
        r"age >>> 3|cannot|invalid",
    ),
    config(
        "calls-never-remote-unknown-column",
        "disposition",
        [CSV_CALLS, "calls.never_remote={colour:[red]}"],
        r"colour",
        r"never_remote|column",
    ),
    config(
        "calls-never-remote-not-a-map",
        "disposition",
        [CSV_CALLS, "calls.never_remote=[C1]"],
        r"never_remote",
        r"\{|column|map|dict",
    ),
    config(
        "calls-feature-unknown",
        "disposition",
        ["calls.features.numeric=[height]"],
        r"height",
        r"column|not found|not in",
    ),
    config(
        "calls-subgroup-column-unknown",
        "disposition",
        ["calls.subgroups.sex=gender"],
        r"gender",
        r"subgroups|column",
    ),
    config("calls-max-age-negative", "disposition", ["calls.checks.max_age=-1"], r"max_age", RANGE),
    config(
        "safety-limit-2",
        "disposition",
        ["safety.limit=2"],
        r"safety\.limit",
        r"\b2\b",
        r"between|\(0, ?1\)|0 and 1|below 1",
    ),
    config(
        "safety-limit-0",
        "disposition",
        ["safety.limit=0"],
        r"safety\.limit",
        r"between|\(0, ?1\)|0 and 1|above 0|> ?0",
    ),
    config(
        "safety-limit-abc", "disposition", ["safety.limit=abc"], r"safety\.limit", r"abc", r"number|between"
    ),
    config("safety-limit-negative", "disposition", ["safety.limit=-0.1"], r"safety\.limit", r"-0\.1"),
    config("safety-confidence-1.5", "disposition", ["safety.confidence=1.5"], r"safety\.confidence", r"1\.5"),
    config(
        "safety-two-sided-maybe",
        "disposition",
        ["safety.two_sided=maybe"],
        r"two_sided",
        r"true|false|boolean",
    ),
    config(
        "split-fractions-sum-over-1",
        "disposition",
        ["split.calibration_fraction=0.6", "split.test_fraction=0.5"],
        r"split",
        r"sum|together|less than 1|< ?1|train|below",
    ),
    config(
        "split-fractions-sum-1",
        "disposition",
        ["split.calibration_fraction=0.5", "split.test_fraction=0.5"],
        r"split",
        r"sum|together|less than 1|< ?1|train|below",
    ),
    config(
        "split-test-fraction-0",
        "disposition",
        ["split.test_fraction=0"],
        r"split\.test_fraction",
        r"between|\(0, ?1\)|> ?0",
    ),
    config(
        "split-test-fraction-abc", "disposition", ["split.test_fraction=abc"], r"split\.test_fraction", r"abc"
    ),
    config(
        "split-calibration-start-notadate",
        "disposition",
        ["split.calibration_start=notadate"],
        r"calibration_start",
        r"notadate|date",
    ),
    config(
        "split-starts-reversed",
        "disposition",
        ["split.calibration_start=2023-06-01", "split.test_start=2022-01-01"],
        r"calibration.start|test.start|split",
        r"before|after",
    ),
    config(
        "split-test-start-after-data",
        "disposition",
        ["split.test_start=2099-01-01"],
        r"test_start|test window",
        r"2099|no calls|empty|after|\b0 call",
    ),
    config("tuning-n-splits-1", "disposition", ["tuning.n_splits=1"], r"tuning\.n_splits", RANGE),
    config("tuning-max-rows-0", "disposition", ["tuning.max_rows=0"], r"tuning\.max_rows", RANGE),
    config("tuning-scoring-unknown", "disposition", ["tuning.scoring=best_guess"], r"scoring", r"best_guess"),
    config(
        "calibration-method-unknown",
        "disposition",
        ["calibration.method=magic"],
        r"calibration\.method",
        r"magic",
        r"auto|isotonic|sigmoid",
    ),
    config(
        "classifier-n-estimators-negative",
        "disposition",
        ["classifier.estimator.n_estimators=-5"],
        r"n_estimators",
        r"-5",
    ),
    config(
        "classifier-learning-rate-negative",
        "disposition",
        ["classifier.estimator.learning_rate=-1"],
        r"learning_rate",
        r"-1",
    ),
    config(
        "classifier-search-not-a-map",
        "disposition",
        ["classifier.search=[7,15]"],
        r"classifier\.search",
        r"\{|map|dict|grid",
        hydra_may_refuse=True,
    ),
    config(
        "report-age-bands-unordered",
        "disposition",
        ["report.age_bands=[65,18]"],
        r"age_bands",
        r"increas|order|sorted",
    ),
    config("report-age-bands-empty", "disposition", ["report.age_bands=[]"], r"age_bands", r"empty|at least"),
    config(
        "report-calibration-bins-0", "disposition", ["report.calibration_bins=0"], r"calibration_bins", RANGE
    ),
    config("reasons-top-k-0", "disposition", ["reasons.top_k=0"], r"top_k", RANGE),
    config("reasons-table-calls-negative", "disposition", ["reasons.table_calls=-1"], r"table_calls", RANGE),
    config("baseline-max-rows-0", "disposition", ["baseline_max_rows=0"], r"baseline_max_rows", RANGE),
    config("disposition-seed-abc", "disposition", ["seed=abc"], r"seed", r"abc"),
    config(
        "disposition-store-dir-is-a-file",
        "disposition",
        ["tracking.store_dir={file}"],
        r"tracking\.store_dir",
        r"file|folder|director",
        file=_file,
    ),
    config(
        "calls-filter-leaves-nothing",
        "disposition",
        ["calls.filter='age > 500'"],
        r"calls\.filter",
        r"no calls|leaves|nothing",
    ),
    config(
        "split-calibration-start-before-data",
        "disposition",
        ["split.calibration_start=1990-01-01"],
        r"calibration_start|training",
        r"1990|no calls|0 call|empty",
    ),
    config(
        "calls-feature-listed-twice",
        "disposition",
        ["calls.features.categorical=[area,category,symptom_group,sex,age]"],
        r"age",
        r"twice|both",
    ),
    config(
        "calls-text-column-as-numeric",
        "disposition",
        ["calls.features.categorical=[area,category,symptom_group]", "calls.features.numeric=[age,sex]"],
        r"sex",
        r"number|numeric",
    ),
    config(
        "calls-target-expression-unknown-column",
        "disposition",
        ["calls=csv", "calls.target.column=null", "calls.target.expression='foo == 1'"],
        r"foo|calls\.target",
        r"column|cannot",
    ),
    config("calls-oracle-column-unknown", "disposition", ["calls.oracle_column=truth"], r"truth", r"column"),
    config(
        "calls-earliest-date-notadate",
        "disposition",
        ["calls.checks.earliest_date=notadate"],
        r"earliest_date",
        r"notadate|date",
    ),
    config(
        "classifier-unknown",
        "disposition",
        ["classifier=deep_magic"],
        r"deep_magic|classifier",
        hydra_may_refuse=True,
    ),
]

OWN_POPULATION = "population=csv"
PROJECT = [
    # named in issue 10
    config(
        "project-base-year-abc", "project", ["base_year=abc"], r"base_year", r"abc", r"year|integer|number"
    ),
    config(
        "project-no-population-path",
        "project",
        [OWN_POPULATION],
        r"population\.path",
        r"set|give|missing|needs|required",
        drop=["population.path"],
    ),
    # the class beyond them
    config("project-base-year-before-history", "project", ["base_year=2022"], r"base_year", r"2022"),
    config("project-base-year-fraction", "project", ["base_year=2025.5"], r"base_year", r"2025\.5"),
    config("project-horizon-years-0", "project", ["horizon_years=0"], r"horizon_years", RANGE),
    config("project-horizon-years-fraction", "project", ["horizon_years=2.5"], r"horizon_years", r"2\.5"),
    config("project-horizon-years-40", "project", ["horizon_years=40"], r"horizon_years", r"40"),
    config("project-n-paths-0", "project", ["n_paths=0"], r"n_paths", RANGE),
    config("project-n-paths-abc", "project", ["n_paths=abc"], r"n_paths", r"abc"),
    config(
        "project-quantiles-out-of-order",
        "project",
        ["quantiles=[0.9,0.1]"],
        r"quantiles",
        r"increas|order|sorted",
    ),
    config(
        "project-quantiles-above-1",
        "project",
        ["quantiles=[0.1,1.5]"],
        r"quantiles",
        r"1\.5|between|\(0, ?1\)",
    ),
    config(
        "project-quantiles-empty", "project", ["quantiles=[]"], r"quantiles", r"empty|at least|two or more"
    ),
    config("project-quantiles-scalar", "project", ["quantiles=0.5"], r"quantiles", r"list|\[|two or more"),
    config("project-peak-quantile-1.2", "project", ["peak_quantile=1.2"], r"peak_quantile", r"1\.2"),
    config("project-population-sd-negative", "project", ["population_sd=-0.1"], r"population_sd", r"-0\.1"),
    config(
        "project-rates-source-unknown",
        "project",
        ["rates.source=guess"],
        r"rates\.source",
        r"guess",
        r"fit|config",
    ),
    config(
        "project-rate-ratio-negative", "project", ["rates.rate_ratio={85-89: -1}"], r"rate_ratio", r"85-89|-1"
    ),
    config(
        "project-calls-per-1000-negative",
        "project",
        ["rates.source=config", "rates.calls_per_1000=-5"],
        r"calls_per_1000",
        r"-5",
    ),
    config(
        "project-annual-order-negative", "project", ["daily_shape.annual_order=-1"], r"annual_order", RANGE
    ),
    config(
        "project-fit-on-unknown", "project", ["daily_shape.fit_on=weekly"], r"daily_shape\.fit_on", r"weekly"
    ),
    config(
        "project-end-share-1.5",
        "project",
        ["scenario.remote_closure.end_share=1.5"],
        r"end_share|remote_closure",
        r"1\.5|between",
    ),
    config(
        "project-category-mix-over-1",
        "project",
        ["scenario.category_mix.C1=2"],
        r"category_mix",
        r"sum|share|between|1",
    ),
    config(
        "project-attended-split-negative",
        "project",
        ["scenario.attended_split.conveyed=-0.5"],
        r"attended_split|conveyed",
        r"-0\.5|between|share",
    ),
    config(
        "project-end-year-past", "project", ["scenario.remote_closure.end_year=1990"], r"end_year", r"1990"
    ),
    config(
        "project-ageing-negative",
        "project",
        ["++scenario.ageing={85+: -1}"],
        r"ageing|85\+",
        r"-1|positive|> ?0",
    ),
    config(
        "project-ageing-unknown-band",
        "project",
        ["++scenario.ageing={200-204: 1.2}"],
        r"200-204",
        r"band|ageing",
    ),
    config(
        "project-rate-trend-abc",
        "project",
        ["scenario.rate_trend_per_year=abc"],
        r"rate_trend_per_year",
        r"abc",
    ),
    config("project-history-area-unknown", "project", ["history.areas=[atlantis]"], r"atlantis", r"area"),
    config("project-nation-unknown", "project", ["history.nation=narnia"], r"nation|narnia", r"narnia"),
    config("project-fit-through-1990", "project", ["backtest.fit_through=1990"], r"fit_through", r"1990"),
    config("project-fit-through-abc", "project", ["backtest.fit_through=abc"], r"fit_through", r"abc"),
    config(
        "project-population-areas-negative",
        "project",
        ["population.areas={trust: -5}"],
        r"areas|trust",
        r"-5|positive|> ?0",
    ),
    config(
        "project-history-counts-missing",
        "project",
        ["history.counts_path={tmp}/nothing.csv"],
        r"nothing\.csv",
        r"not found|no such|does not exist",
    ),
    config(
        "project-backtest-counts-missing",
        "project",
        ["backtest.counts_path={tmp}/none.csv"],
        r"none\.csv",
        r"not found|no such|does not exist",
    ),
    config("project-seed-abc", "project", ["seed=abc"], r"seed", r"abc"),
    config(
        "project-store-dir-is-a-file",
        "project",
        ["tracking.store_dir={file}"],
        r"tracking\.store_dir",
        r"file|folder|director",
        file=_file,
    ),
    config("project-history-y-column-missing", "project", ["history.columns.y=calls"], r"calls", r"column"),
    config(
        "project-population-column-missing",
        "project",
        ["population.columns.population=residents"],
        r"residents",
        r"column",
    ),
    config(
        "project-population-areas-text", "project", ["population.areas={trust: abc}"], r"areas|trust", r"abc"
    ),
    config(
        "project-base-year-2100", "project", ["base_year=2100"], r"base_year|year", r"2100|2050|population"
    ),
    config("project-annual-order-100", "project", ["daily_shape.annual_order=100"], r"annual_order", r"100"),
    config("project-peak-quantile-abc", "project", ["peak_quantile=abc"], r"peak_quantile", r"abc"),
    config(
        "project-scenario-unknown", "project", ["scenario=utopia"], r"utopia|scenario", hydra_may_refuse=True
    ),
]

CASES = [*FORECAST, *DISPOSITION, *PROJECT]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bad_overrides_are_refused_clearly(case, tmp_path, seeded):
    check(run_case(case, tmp_path, seeded[case.app]))
