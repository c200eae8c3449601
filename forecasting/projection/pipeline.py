"""The projection job: read inputs, fit, project every scenario, write the planner's outputs, log to
MLflow, register the projection and move ``champion`` only on evidence (pipeline layer)."""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from forecasting.io import atomic_write, read_table
from forecasting.projection.backtest import BacktestResult, backtest_on_truth, truth_daily
from forecasting.projection.config_checks import check_config
from forecasting.projection.daily_shape import DailyShape
from forecasting.projection.history import annual_history, daily_history
from forecasting.projection.population import scale_to_areas, to_areas, to_bands, validate_population
from forecasting.projection.projector import Projection, ProjectionSettings, project_scenarios
from forecasting.projection.pyfunc_model import log_projection_model
from forecasting.projection.rates import AgeRateModel
from forecasting.projection.report import WORKBOOK, ReportContext, build_charts, render_html, write_workbook
from forecasting.projection.scenario import Scenario
from forecasting.projection.serving import REQUEST_COLUMNS, output_columns
from forecasting.projection.splits import MEASURES
from forecasting.projection.uncertainty import TrendUncertainty
from forecasting.projection.uncertainty_report import uncertainty_section
from forecasting.projection.workforce import (
    Workforce,
    WorkforceSettings,
    hour_profile_from_calls,
    hour_profile_from_shares,
    projection_workforce,
)
from forecasting.projection.workforce_report import workforce_section
from mlops.concurrency import store_lock_path
from mlops.console import stage
from mlops.contract import CONTRACT_VERSION, contract_decision
from mlops.errors import ConfigError, DataValidationError, UserInputError
from mlops.gate import refuse, score_problems, table_problems
from mlops.integrity import ModelIntegrityError, load_verified_model
from mlops.registry import CHAMPION, PromotionDecision, register_and_promote
from mlops.staging import staged_outputs
from mlops.tracking import dataset_fingerprint, prepare_experiment, resolve_store, run_name, tracked_run


@dataclass(frozen=True)
class ProjectionRun:
    """What a projection run produced, for the entry point to report."""

    run_id: str
    model_uri: str
    version: str
    promoted: bool
    reason: str
    headlines: list[str]
    report_path: Path
    output_dir: Path
    ui_command: str


def load_scenarios(cfg: DictConfig) -> list[Scenario]:
    """The headline scenario first, then the comparison scenarios (the headline replaces its namesake)."""
    headline = Scenario.from_dict(OmegaConf.to_container(cfg.scenario, resolve=True))
    compare = cfg.get("compare") or {}
    others = [Scenario.from_dict(OmegaConf.to_container(spec, resolve=True)) for spec in compare.values()]
    return [headline, *[sc for sc in others if sc.name != headline.name]]


def projection_settings(cfg: DictConfig) -> ProjectionSettings:
    return ProjectionSettings(
        base_year=int(cfg.base_year),
        horizon_years=int(cfg.horizon_years),
        n_paths=int(cfg.n_paths),
        quantiles=tuple(float(q) for q in cfg.quantiles),
        population_sd=float(cfg.population_sd),
        peak_quantile=float(cfg.peak_quantile),
        seed=int(cfg.seed),
        uncertainty=TrendUncertainty.from_dict(OmegaConf.to_container(cfg.uncertainty, resolve=True)),
    )


def read_history(cfg: DictConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The configured history: calls per area and day, and per area and complete year."""
    h = cfg.history
    raw = read_table(h.counts_path, h.get("read"), "history.read")
    daily = daily_history(
        raw, h.columns, list(h.areas), source=str(h.counts_path), read=h.get("read"), checks=h.get("checks")
    )
    return daily, annual_history(daily)


def fit_rates(cfg: DictConfig, annual: pd.DataFrame, population: pd.DataFrame) -> AgeRateModel:
    """Per-capita rates fitted on the history, or set in config against the projection population."""
    rate_ratio = {str(k): float(v) for k, v in cfg.rates.rate_ratio.items()}
    if cfg.rates.source == "fit":
        path = cfg.history.population_path
        table = read_table(path, cfg.history.get("read"), "history.read")
        history_population = validate_population(table, sorted(annual["year"].unique()), str(path))
        return AgeRateModel(rate_ratio, bool(cfg.rates.area_effects)).fit(annual, history_population)
    if cfg.rates.source == "config":
        last = int(annual["year"].max())
        per_1000, trend = float(cfg.rates.calls_per_1000), float(cfg.rates.trend_per_year)
        return AgeRateModel.from_config(rate_ratio, per_1000, trend, population, last)
    raise ConfigError(f"rates.source must be `fit` or `config`, got {cfg.rates.source!r}")


def fit_shape(cfg: DictConfig, daily: pd.DataFrame) -> DailyShape:
    """The daily shape, on the history areas added up (a whole trust) or on each area."""
    if cfg.daily_shape.fit_on == "total":
        n_areas = daily["area"].nunique()
        per_day = daily.groupby("ds").agg(y=("y", "sum"), n=("area", "nunique"))
        daily = per_day[per_day["n"] == n_areas].reset_index().assign(area="total")[["area", "ds", "y"]]
    elif cfg.daily_shape.fit_on != "areas":
        raise ConfigError(f"daily_shape.fit_on must be `total` or `areas`, got {cfg.daily_shape.fit_on!r}")
    return DailyShape(str(cfg.history.nation), int(cfg.daily_shape.annual_order)).fit(daily)


def load_projection_population(cfg: DictConfig, years: range) -> pd.DataFrame:
    """The projection areas' population, validated for ``years`` and scaled if configured."""
    p = cfg.population
    raw = read_table(p.path, p.get("read"), "population.read")
    columns = {str(v): str(k) for k, v in p.columns.items()}
    # A mapped column the file lacks must not fall back silently on a same-named column of the file.
    missing = [f"population.columns.{k}={v}" for v, k in columns.items() if v not in raw.columns]
    if missing:
        raise DataValidationError(
            f"{p.path}: no column(s) named as in {', '.join(missing)}; the file has {list(raw.columns)}. "
            "Map each to one of those columns."
        )
    table = validate_population(raw.rename(columns=columns), source=str(p.path))
    # Local authorities (or any units of the file) added up into areas, single ages into the bands.
    area_of = OmegaConf.to_container(p.area_of, resolve=True) if p.get("area_of") else None
    table = to_areas(table, area_of, str(p.path))
    table = to_bands(table, [str(band) for band in cfg.rates.rate_ratio], str(p.path))
    table = validate_population(table, years, source=str(p.path))
    areas = OmegaConf.to_container(p.areas, resolve=True) if p.get("areas") else None
    return scale_to_areas(table, areas, int(cfg.base_year))


def run_backtest(cfg: DictConfig, method: dict) -> tuple[BacktestResult, str]:
    """The method scored on the synthetic world, and a key naming the data and protocol it used."""
    b = cfg.backtest
    daily = truth_daily(read_table(b.counts_path))
    population = validate_population(read_table(b.population_path), source=str(b.population_path))
    result = backtest_on_truth(daily, population, int(b.fit_through), **method)
    key = json.dumps({"data": dataset_fingerprint(daily), "fit_through": int(b.fit_through)})
    return result, key


def project(cfg: DictConfig, output_dir: Path, command: str = "") -> ProjectionRun:
    """Run the projection described by ``cfg``, writing tables, charts and the report to ``output_dir``."""
    started = time.time()  # the MLflow run's start: its duration covers the backtest and the projection
    check_config(cfg)  # every config value, before any file is read
    settings = projection_settings(cfg)
    staffing = workforce_settings(cfg)  # reads the call-level timestamps, if given, before the fits
    scenarios = load_scenarios(cfg)
    headline = scenarios[0].name
    daily, annual = read_history(cfg)
    last_year = int(annual["year"].max())
    settings.validate(last_year)  # before reading more files: a wrong base year or horizon fails fast
    population = load_projection_population(cfg, range(last_year, settings.final_year + 1))
    rates = fit_rates(cfg, annual, population)
    shape = fit_shape(cfg, daily)
    bands = list(dict.fromkeys(population["age_band"]))
    for scenario in scenarios:
        scenario.check_against(bands, settings.base_year, settings.final_year)
    method = {
        "rate_ratio": {str(k): float(v) for k, v in cfg.rates.rate_ratio.items()},
        "area_effects": bool(cfg.rates.area_effects),
        "nation": str(cfg.history.nation),
        "annual_order": int(cfg.daily_shape.annual_order),
    }
    clock = time.monotonic()
    with stage(f"backtest of the method on {cfg.backtest.counts_path}"):
        backtest, backtest_key = run_backtest(cfg, method)
    timings = {"backtest_seconds": time.monotonic() - clock}
    clock = time.monotonic()
    total = cfg.get("total_area")  # several areas: their sum, path by path, as one more area
    total_name = None if total is None else str(total)
    n_areas = population["area"].nunique()
    with stage(f"projection: {n_areas} area(s) x {len(scenarios)} scenarios x {settings.n_paths:,} paths"):
        projection = project_scenarios(rates, shape, population, scenarios, settings, total_name)
    timings["projection_seconds"] = time.monotonic() - clock
    labour = None
    if staffing is not None:
        clock = time.monotonic()
        labour = projection_workforce(projection, staffing)
        timings["workforce_seconds"] = time.monotonic() - clock

    # The gate before anything is written or registered: what it would serve must be plausible.
    scores = {"backtest annual MAPE": backtest.annual_mape, "backtest daily MAPE": backtest.daily_mape}
    refuse(
        "the synthetic backtest",
        score_problems(scores, list(scores)),
        "check backtest.counts_path, backtest.population_path and backtest.fit_through",
    )
    refuse("the projected paths", projection_problems(projection))
    contract = projection_contract(projection)
    store = resolve_store(cfg.tracking)
    experiment_id = prepare_experiment(store, cfg.experiment_name)
    client = MlflowClient(store.tracking_uri)
    name = str(cfg.registry.model_name)

    # Results appear in output_dir only when everything, registration included, has succeeded.
    with staged_outputs(output_dir) as staging:
        files = _write_tables(projection, backtest, staging)
        sections = [uncertainty_section(settings.uncertainty, settings.population_sd, settings.horizon_years)]
        section_charts = {}
        if labour is not None:
            files += _write_workforce(labour, settings.base_year, settings.final_year, staging)
            lead = (
                total_name
                if total_name in set(projection.annual["area"])
                else str(projection.annual["area"].iloc[0])
            )
            section, section_charts = workforce_section(
                labour, lead, headline, settings.base_year, settings.final_year, settings.labels
            )
            sections.append(section)
        # The same tables as one workbook: an emailed report keeps them in one attachment.
        write_workbook(staging / WORKBOOK, {f: pd.read_csv(staging / f) for f in files if f.endswith(".csv")})
        files.append(WORKBOOK)
        with stage(f"report: charts of {projection.annual['area'].nunique()} area(s)"):
            charts = {**build_charts(projection, headline, annual, total_name), **section_charts}
        for chart, png in charts.items():
            atomic_write(staging / chart, lambda f, png=png: f.write(png), mode="wb")
        context = ReportContext(
            title="Ambulance demand projection",  # the report adds the projected years
            headline=headline,
            population_note=_population_note(cfg),
            history_note=_history_note(cfg, rates),
            rates=rates,
            shape=shape,
            history=annual,
            synthetic_history=_synthetic_history(cfg),
            total_area=total_name,
            backtest_note=(
                f"Fitted on the synthetic world up to {cfg.backtest.fit_through} and projecting the later "
                f"years, expected annual calls were {backtest.annual_mape:.1f} % from the truth on average "
                f"({backtest.daily_mape:.1f} % day by day)."
            ),
            command=command,
            files=[*files, *charts],
            sections=sections,
        )
        atomic_write(staging / "report.html", lambda f: f.write(render_html(projection, context, charts)))

        title = run_name("project", headline, cfg.history.name)
        with tracked_run(
            experiment_id, title, started, sweep_metric=("backtest_annual_mape", "minimize")
        ) as run:
            mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
            container = OmegaConf.to_container(cfg, resolve=True)
            mlflow.log_params(_params(container))
            metrics = {
                **_metrics(projection, rates, backtest),
                **_workforce_metrics(labour, settings),
                **timings,
            }
            mlflow.log_metrics(metrics)
            mlflow.set_tags({"headline_scenario": headline, "backtest_key": backtest_key})
            mlflow.log_artifacts(str(staging), artifact_path="results")
            model_info = log_projection_model(
                projection,
                staging / "model",
                metadata=contract,
                workforce=None if labour is None else labour.by_year,
            )
            # Decide (re-scoring the champion if needed) before the version exists; deciding,
            # registering and moving the alias are atomic across the parallel jobs of a multirun.
            version, decision = register_and_promote(
                client,
                model_info.model_uri,
                name,
                {
                    "backtest_key": backtest_key,
                    "backtest_annual_mape": backtest.annual_mape,
                    "method": json.dumps(method),
                    "scenarios": ",".join(sc.name for sc in scenarios),
                    "final_year": settings.final_year,
                },
                lambda champion: _promotion_decision(
                    champion, name, backtest.annual_mape, backtest_key, cfg, contract, store.tracking_uri
                ),
                store_lock_path(store.tracking_uri),
                description=_version_description(projection, contract, cfg, rates, backtest, run),
            )
            mlflow.set_tag("promotion", decision.reason)

    return ProjectionRun(
        run_id=run.info.run_id,
        # A challenger is not what @champion serves: point at the version itself.
        model_uri=f"models:/{name}@{CHAMPION}" if decision.promoted else f"models:/{name}/{version.version}",
        version=str(version.version),
        promoted=decision.promoted,
        reason=decision.reason,
        headlines=_headlines(projection),
        report_path=output_dir / "report.html",
        output_dir=output_dir,
        ui_command=store.ui_command,
    )


def projection_problems(projection: Projection) -> list[str]:
    """Gate problems of the projected tables: finite, non-negative, quantiles in increasing order."""
    labels = projection.settings.labels
    problems = []
    for what, table, keys in (
        ("daily", projection.daily, ("area", "scenario", "ds")),
        ("annual", projection.annual, ("area", "scenario", "year", "measure")),
    ):
        problems += [f"{what} table: {p}" for p in table_problems(table, ["mean", "sd", *labels], keys)]
    values = projection.daily[labels].to_numpy(dtype=float)
    if (values[:, 1:] < values[:, :-1] - 1e-9 * abs(values[:, 1:])).any():
        problems.append(f"daily table: quantiles {labels} not in increasing order")
    return problems


def projection_contract(projection: Projection) -> dict:
    """What the registered projection serves, for its MLmodel metadata (see :mod:`mlops.contract`)."""
    s = projection.settings
    daily = projection.daily
    categories = sorted({c for sc in projection.scenarios for c in sc.category_mix})
    return {
        "kind": "projection",
        "contract_version": CONTRACT_VERSION,
        "areas": sorted(str(a) for a in daily["area"].unique()),
        "scenarios": [sc.name for sc in projection.scenarios],
        "base_year": int(s.base_year),
        "final_year": int(s.final_year),
        "first_date": f"{daily['ds'].min():%Y-%m-%d}",
        "last_date": f"{daily['ds'].max():%Y-%m-%d}",
        "categories": categories,
        "measures": list(MEASURES),
        "quantiles": list(s.labels),
        "request_columns": list(REQUEST_COLUMNS),
        "output_columns": output_columns(s.labels),
    }


def _promotion_decision(
    champion: ModelVersion | None,
    name: str,
    mape: float,
    key: str,
    cfg: DictConfig,
    contract: dict,
    tracking_uri: str,
) -> PromotionDecision:
    """Champion moves when it serves the same contract and this method's backtest error is no worse.

    "No worse" (not "better") because a projection is refreshed when populations or scenarios are,
    not only when the method improves: a run that is as accurate should serve the newest inputs.
    A run for other areas, scenarios or years (a planner's what-if) never moves the champion. The
    stored champion is loaded through its integrity check and its served table passes the same
    gate; one that fails either is replaced. When the champion was scored on other data, its
    method is re-scored here on the same data; if that is impossible, the champion stays.
    """
    if champion is None:
        return PromotionDecision(
            True, f"first projection: champion with synthetic backtest MAPE {mape:.3f} %"
        )
    label = f"champion v{champion.version}"
    if (different := contract_decision(contract, champion)) is not None:
        return different
    try:
        served = load_verified_model(f"models:/{name}/{champion.version}", tracking_uri).unwrap_python_model()
    except ModelIntegrityError as error:
        return PromotionDecision(True, f"replaces {label}, whose files fail the integrity check ({error})")
    columns = ["mean", "sd", *served.labels]
    if problems := table_problems(served.daily, columns, ("area", "scenario", "ds")):
        return PromotionDecision(
            True, f"replaces {label}, whose served table fails the gate: " + "; ".join(problems)
        )
    if champion.tags.get("backtest_key") == key:
        champion_mape = float(champion.tags["backtest_annual_mape"])
    else:
        print(
            f"promotion: re-scoring {label}'s method on this run's backtest data: it was scored on other data"
        )
        try:
            champion_mape = run_backtest(cfg, json.loads(champion.tags["method"]))[0].annual_mape
        except (UserInputError, ValueError, KeyError, TypeError) as error:
            return PromotionDecision(
                False,
                f"{label} cannot be re-scored on this run's backtest data ({error}), so there is no evidence "
                "this projection is better; it stays champion",
            )
    mlflow.log_metric("champion_backtest_annual_mape_same_data", champion_mape)
    if not math.isfinite(champion_mape) or mape <= champion_mape + 1e-9:
        return PromotionDecision(
            True,
            f"backtest MAPE {mape:.3f} % is no worse than {label} ({champion_mape:.3f} %)",
        )
    return PromotionDecision(
        False,
        f"backtest MAPE {mape:.3f} % is worse than {label} ({champion_mape:.3f} %)",
    )


def workforce_settings(cfg: DictConfig) -> WorkforceSettings | None:
    """The workforce settings, with the hour-of-day profile learnt from call-level timestamps when
    ``workforce.profile.calls_path`` is given; None when ``workforce.enabled`` is false."""
    w = cfg.get("workforce")
    if w is None or not w.get("enabled", True):
        return None
    values = OmegaConf.to_container(w, resolve=True)
    profile = values.get("profile") or {}
    path = profile.get("calls_path")
    if path:
        column = str(profile.get("time_column") or "call_time")
        table = read_table(path, w.get("read"), "workforce.read")
        if column not in table.columns:
            raise DataValidationError(
                f"{path}: no column {column!r} for call times; the file has {list(table.columns)[:12]}. "
                "Set workforce.profile.time_column to the column of call date-times"
            )
        hours = hour_profile_from_calls(table[column], str(path))
    else:
        hours = hour_profile_from_shares(profile.get("hour_shares") or [])
    return WorkforceSettings.from_dict(values, hours)


def _write_workforce(labour: Workforce, base_year: int, final_year: int, output_dir: Path) -> list[str]:
    """The yearly workforce table and the winter week by hour for the base and final years."""
    week = labour.by_hour[labour.by_hour["year"].isin([base_year, final_year])]
    tables = {"workforce_by_year.csv": labour.by_year, "workforce_winter_week.csv": week}
    for file_name, table in tables.items():
        atomic_write(output_dir / file_name, lambda f, t=table: t.round(3).to_csv(f, index=False))
    return list(tables)


def _workforce_metrics(labour: Workforce | None, settings: ProjectionSettings) -> dict[str, float]:
    if labour is None:
        return {}
    final = labour.by_year[labour.by_year["year"] == settings.final_year]
    wanted = final[final["measure"].isin(["vehicles_peak_hour", "clinicians_peak_hour", "ambulance_hours"])]
    return {
        f"{row.measure}_{settings.final_year}.{row.area}.{row.scenario}": float(row.mean)
        for row in wanted.itertuples()
    }


def _write_tables(projection: Projection, backtest: BacktestResult, output_dir: Path) -> list[str]:
    tables = {
        "projection_by_year.csv": projection.annual,
        "projection_by_age_band.csv": projection.by_band,
        "peak_days.csv": projection.peaks,
        "growth.csv": projection.growth,
        "daily.csv": projection.daily.assign(ds=projection.daily["ds"].dt.strftime("%Y-%m-%d")),
        "population_by_scenario.csv": projection.population,
        "backtest_synthetic.csv": backtest.annual,
    }
    for file_name, table in tables.items():
        atomic_write(output_dir / file_name, lambda f, t=table: t.round(4).to_csv(f, index=False))
    return list(tables)


def _params(container: dict) -> dict[str, str]:
    """Flat config values as MLflow params; keys like ``ageing.85+`` become ``ageing.85plus`` (MLflow
    refuses ``+``) and long values are cut to what MLflow stores."""
    flat = pd.json_normalize(container, sep=".").iloc[0]
    keys = [re.sub(r"[^\w\-. :/]", "_", key.replace("+", "plus")) for key in flat.index]
    return {key: str(value)[:6000] for key, value in zip(keys, flat.to_numpy(), strict=True)}


def _metrics(projection: Projection, rates: AgeRateModel, backtest: BacktestResult) -> dict[str, float]:
    final = projection.settings.final_year
    metrics = {
        "backtest_annual_mape": backtest.annual_mape,
        "backtest_daily_mape": backtest.daily_mape,
        "rate_trend_per_year": math.expm1(rates.trend_),
        "year_to_year_sd": rates.year_sd_,
    }
    for row in projection.growth.itertuples():
        metrics[f"growth_{row.measure}.{row.area}.{row.scenario}"] = float(row.mean)
    annual = projection.annual[
        (projection.annual["year"] == final) & projection.annual["measure"].isin(["calls", "needs_ambulance"])
    ]
    for row in annual.itertuples():
        metrics[f"{row.measure}_{final}.{row.area}.{row.scenario}"] = float(row.mean)
    return metrics


def _headlines(projection: Projection) -> list[str]:
    s = projection.settings
    lines = []
    for row in projection.growth[projection.growth["measure"] == "calls"].itertuples():
        annual = projection.annual
        final = annual[
            (annual["area"] == row.area)
            & (annual["scenario"] == row.scenario)
            & (annual["year"] == s.final_year)
        ].set_index("measure")
        lo, hi = s.labels[0], s.labels[-1]
        lines.append(
            f"{row.area} / {row.scenario}: {final.loc['calls', 'mean']:,.0f} calls in {s.final_year} "
            f"({lo}-{hi} {final.loc['calls', lo]:,.0f}-{final.loc['calls', hi]:,.0f}), {row.mean:+.1%} on "
            f"{s.base_year}; {final.loc['needs_ambulance', 'mean']:,.0f} needing an ambulance"
        )
    return lines


def _version_description(
    projection: Projection,
    contract: dict,
    cfg: DictConfig,
    rates: AgeRateModel,
    backtest: BacktestResult,
    run,
) -> str:
    """What the registry shows for the version: what is projected, from which data, how well it did."""
    s = projection.settings
    return (
        f"Ten-year projection {projection.first_year}-{s.final_year} of calls, categories and dispositions "
        f"for {', '.join(contract['areas'])} under {', '.join(contract['scenarios'])} ({s.n_paths:,} paths). "
        f"Rates fitted on the {cfg.history.name} history {rates.first_year_}-{rates.last_year_}; population "
        f"{cfg.population.name}.\nBacktest on {cfg.backtest.counts_path} (fitted to "
        f"{cfg.backtest.fit_through}): annual MAPE {backtest.annual_mape:.2f} %, daily MAPE "
        f"{backtest.daily_mape:.2f} %.\nRun {run.info.run_id} ({run.info.run_name})."
    )


def _population_note(cfg: DictConfig) -> str:
    p = cfg.population
    areas = OmegaConf.to_container(p.areas, resolve=True) if p.get("areas") else None
    scaled = (
        " Its age structure and change are scaled to "
        + ", ".join(f"{name} ({int(size):,} residents in {cfg.base_year})" for name, size in areas.items())
        + "."
        if areas
        else ""
    )
    return f"{p.get('source') or p.path}.{scaled} {p.get('attribution') or ''}".strip()


def _synthetic_history(cfg: DictConfig) -> bool:
    """Whether the history is a synthetic world (the generator writes world.yaml beside its counts)."""
    counts = Path(str(cfg.history.counts_path))
    return str(cfg.history.name) == "synthetic" or (counts.parent / "world.yaml").is_file()


def _history_note(cfg: DictConfig, rates: AgeRateModel) -> str:
    h = cfg.history
    how = (
        "estimated with a Poisson model of calls on age band and year"
        if cfg.rates.source == "fit"
        else f"set in the configuration ({cfg.rates.calls_per_1000} calls per 1,000 residents)"
    )
    return (
        f"Calls per person are {how}, from the {h.name} history {rates.first_year_}-{rates.last_year_} "
        f"({h.counts_path}); the daily pattern comes from the same history."
    )
