"""How close each model gets to the oracle on the synthetic world, horizons 1..84.

The oracle forecasts the true expected value the generator used, so its MAE is the noise no model
can remove. A ratio of 1.00 means a model is as good as knowing the truth. Target: <= 1.05 for the
best model.

Run: ``python -m experiments.bench benchmark=oracle`` (config: conf/benchmark/oracle.yaml).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from experiments.harness import ROOT, BenchmarkReport, model_label
from forecasting.backtest import rolling_origin_backtest
from forecasting.data import load_daily_counts
from forecasting.metrics import mae
from forecasting.pipeline import build_forecaster

TARGET = 1.05


def ratios(backtest: pd.DataFrame, buckets: Sequence[Sequence[int]]) -> dict[str, float]:
    """MAE / oracle MAE over each bucket of days ahead."""
    out = {}
    for lo, hi in buckets:
        rows = backtest[backtest["h"].between(lo, hi)]
        out[f"h {lo}-{hi}"] = mae(rows["y"], rows["mean"]) / mae(rows["y"], rows["y_expected"])
    return out


def run(
    workdir: Path,
    data_path: str,
    horizon: int,
    n_origins: int,
    step: int,
    buckets: Sequence[Sequence[int]],
    models: Mapping[str, Mapping],
) -> BenchmarkReport:
    path = Path(data_path) if Path(data_path).is_absolute() else ROOT / data_path
    data = load_daily_counts(path, keep=["y_expected"])
    rows, times = {}, {}
    for model_cfg in models.values():
        forecaster = build_forecaster(model_cfg)
        name = model_label(forecaster)
        start = time.perf_counter()
        backtest = rolling_origin_backtest(forecaster, data, horizon, n_origins, step)
        times[name] = time.perf_counter() - start
        rows[name] = ratios(backtest, buckets)
        print(f"{name}: {rows[name][f'h 1-{horizon}']:.3f} ({times[name]:.0f} s)", flush=True)
    table = pd.DataFrame.from_dict(rows, orient="index").assign(seconds=pd.Series(times))
    overall = f"h 1-{horizon}"
    best = table[overall].idxmin()
    labels = [f"h {lo}-{hi}" for lo, hi in buckets]
    lines = [
        "# Oracle benchmark: MAE / oracle MAE on the synthetic world",
        "",
        f"{data['unique_id'].nunique()} series (areas x ARP categories), {n_origins} origins {step} days "
        f"apart, {horizon}-day forecasts. 1.00 = as good as knowing the true expected value. Produced by",
        "`python -m experiments.bench benchmark=oracle`, logged to the MLflow experiment `benchmark-oracle`.",
        "",
        "| model | " + " | ".join(labels) + " | wall time |",
        "|---|" + "---|" * (len(labels) + 1),
    ]
    for name, row in table.iterrows():
        lines.append(
            f"| {name} | "
            + " | ".join(f"{row[label]:.3f}" for label in labels)
            + f" | {row['seconds']:.0f} s |"
        )
    verdict = "met" if table.loc[best, overall] <= TARGET else "missed"
    lines += [
        "",
        f"Best: {best}, {table.loc[best, overall]:.3f} over horizons 1-{horizon} "
        f"(target <= {TARGET}: {verdict}).",
    ]
    metrics = {"best_ratio": table.loc[best, overall], "best_seconds": table.loc[best, "seconds"]}
    return BenchmarkReport(
        markdown="\n".join(lines),
        metrics=metrics,
        tables={"": table.rename_axis("model").reset_index()},
    )
