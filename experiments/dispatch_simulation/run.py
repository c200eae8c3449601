"""Reference consumer: a week of 999 calls through a clinical hub and an ambulance fleet.

    python -m experiments.bench benchmark=dispatch_simulation   # or: make simulate

Loads three registered models by alias, as any other service would (docs/serving.md):

1. ``daily-demand-synthetic@champion``: expected calls per area, category and day for one week;
2. ``disposition-remote-closure@champion``: which of those calls the hub may close by telephone;
3. ``demand-projection-ons-england@champion``: how much busier the same week is in 2035.

Calls are drawn at the forecast volume with the synthetic call generator, scored by the
disposition model, and run through :mod:`simulation` with and without the hub, for the 2024 week
and for 2035 (the forecast scaled by the projected growth, same fleet), and reports the
response-time table against the ARP standards (config: conf/benchmark/dispatch_simulation.yaml).

Store of the models: ``tracking_uri`` (``benchmark.params.tracking_uri=...``), else
``MLFLOW_TRACKING_URI``; by default a store of its own in ``experiments/dispatch_simulation/mlruns``,
where any missing model is first trained by the toolkit's own commands with quicker settings. The
benchmark run itself is logged by the harness to its own store.
"""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from disposition.synthetic_calls import OUTCOME_COLUMNS, sample_calls
from experiments.dispatch_simulation.simulation import Settings, response_table, simulate
from experiments.harness import BenchmarkReport
from experiments.model_store import (
    DISPOSITION,
    FORECAST,
    PROJECTION,
    ensure_champions,
    load_champion,
    model_store,
)

NAME = "dispatch_simulation"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SYNTHETIC = ROOT / "data" / "synthetic"
WEEK = pd.date_range("2024-01-08", periods=7)  # Monday to Sunday, clear of the festive fortnight
WEEK_2035 = pd.date_range("2035-01-08", periods=7)  # the same January week, also Monday to Sunday


def forecast_week(model) -> pd.DataFrame:
    """Expected calls per area, category and day of :data:`WEEK` (``area, category, ds, y``)."""
    series = pd.read_csv(SYNTHETIC / "daily_counts.csv", usecols=["unique_id"])["unique_id"].unique()
    request = pd.MultiIndex.from_product([series, WEEK], names=["unique_id", "ds"]).to_frame(index=False)
    answer = model.predict(request)
    parts = answer["unique_id"].str.split("/", expand=True)
    return pd.DataFrame({"area": parts[0], "category": parts[1], "ds": answer["ds"], "y": answer["mean"]})


def projected_growth(model, scenario: str = "principal") -> float:
    """Calls in the 2035 week over calls in the 2024 week, from the projection's expected calls."""
    days = list(WEEK) + list(WEEK_2035)
    request = pd.DataFrame({"area": "trust", "date": days, "scenario": scenario})
    calls = model.predict(request)["calls_mean"].to_numpy()
    return float(calls[7:].sum() / calls[:7].sum())


def week_of_calls(expected: pd.DataFrame, scale: float, seed: int) -> pd.DataFrame:
    """A Poisson number of calls at ``scale`` x the expected volume, drawn like the synthetic calls."""
    rng = np.random.default_rng(seed)
    n_calls = int(rng.poisson(expected["y"].sum() * scale))
    ratio = OmegaConf.to_container(OmegaConf.load(SYNTHETIC / "world.yaml").world.age_rate_ratio)
    population = pd.read_csv(SYNTHETIC / "population.csv")
    calls = sample_calls(
        expected.assign(ds=expected["ds"].dt.strftime("%Y-%m-%d")), population, ratio, n_calls, seed
    )
    # The generator also writes what happened to each call; a dispatch system would not know it.
    return calls.calls.drop(columns=[c for c in OUTCOME_COLUMNS if c in calls.calls.columns])


def to_markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        cells = [f"{v:.1f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(workdir: Path, tracking_uri: str | None, seed: int) -> BenchmarkReport:
    # Not MLFLOW_TRACKING_URI here: the harness has pointed it at its own store. The config reads
    # the variable when the command starts (${oc.env:MLFLOW_TRACKING_URI,null}).
    tracking_uri, own_dir = model_store(tracking_uri, HERE / "mlruns")
    started = time.perf_counter()
    champion = ensure_champions(tracking_uri, own_dir, [FORECAST, PROJECTION, DISPOSITION])
    mlflow.set_tracking_uri(tracking_uri)
    # Each file checked against the manifest recorded at registration before anything is loaded.
    forecast = load_champion(tracking_uri, FORECAST)
    projection = load_champion(tracking_uri, PROJECTION)
    disposition = load_champion(tracking_uri, DISPOSITION)

    expected = forecast_week(forecast)
    growth = projected_growth(projection)
    settings = Settings()
    sections, tables = [], []
    metrics: dict[str, float] = {"growth_2035": growth}
    for year, label, scale in [
        (2024, "2024 week (forecast)", 1.0),
        (2035, "2035 week (projection, principal)", growth),
    ]:
        calls = week_of_calls(expected, scale, seed)
        scores = disposition.predict(calls, params={"reasons": "none"})
        calls = calls.assign(
            recommend_remote=scores["recommend_remote"], p_safe_remote=scores["p_safe_remote"]
        )
        metrics[f"calls_{year}"] = len(calls)
        for with_hub in (False, True):
            result = simulate(calls, settings, with_hub, seed=seed)
            table = response_table(result)
            name = f"{label}, {'with' if with_hub else 'without'} the hub"
            closed = (result["outcome"] == "closed_remotely").mean()
            sections.append(
                f"### {name}\n\n{len(calls):,} calls, {closed:.1%} closed by the hub\n\n{to_markdown(table)}"
            )
            print(f"\n{name}: {len(calls):,} calls, {closed:.1%} closed by the hub")
            print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
            case = f"{year}_{'hub' if with_hub else 'no_hub'}"
            tables.append(table.assign(year=year, hub=with_hub))
            metrics[f"{case}_closed_share"] = closed
            metrics[f"{case}_standards_met"] = int((table["met"] == "yes").sum())
            for row in table.itertuples(index=False):
                metrics[f"{case}_{row.category}_mean_min"] = row.mean_min
                metrics[f"{case}_{row.category}_p90_min"] = row.p90_min

    travel = "/".join(f"{minutes:g}" for minutes in settings.travel_median.values())
    elapsed = time.perf_counter() - started
    header = [
        "# Dispatch simulation: a week with and without the clinical hub",
        "",
        f"Produced by `python -m experiments.bench benchmark={NAME}` (or `make simulate`), logged to the "
        f"MLflow experiment `benchmark-{NAME}`; seed {seed}; {elapsed:.0f} s on 2 cores.",
        "",
        "Models (by alias): " + ", ".join(f"`{n}@champion` (v{v})" for n, v in champion.items()) + ".",
        f"Week of {WEEK[0]:%Y-%m-%d} to {WEEK[-1]:%Y-%m-%d} at the forecast's expected volume; "
        f"2035: the same week scaled by the projection's growth, x{growth:.3f} ({WEEK_2035[0]:%Y-%m-%d} to "
        f"{WEEK_2035[-1]:%Y-%m-%d} over 2024, principal scenario), with the same fleet.",
        f"Fleet and hub: {settings.ambulances} ambulances and {settings.clinicians} hub clinicians at all "
        f"times; travel median {travel} min (C1-C4), on scene {settings.on_scene_mean:.0f} min, "
        f"{settings.conveyance_share:.0%} conveyed with {settings.hospital_mean:.0f} min to hospital and "
        f"handover, telephone assessment {settings.assessment_mean:.0f} min (see simulation.py).",
        "Response time: from the call to an ambulance at the scene (calls sent to the hub and escalated "
        "include their time in the hub). Standards: ARP (C1 mean 7 / 90th 15 min, C2 18 / 40, "
        "C3 90th 120, C4 90th 180).",
        "",
        "This is a reference consumer, not a capacity plan: one pooled fleet without geography, "
        "synthetic calls, round service times.",
        "",
    ]
    responses = pd.concat(tables, ignore_index=True)
    responses = responses[["year", "hub", *(c for c in responses.columns if c not in ("year", "hub"))]]
    return BenchmarkReport(
        markdown="\n".join(header) + "\n" + "\n\n".join(sections),
        metrics=metrics,
        tables={"": responses},
    )
