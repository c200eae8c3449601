"""Speed and memory of the global LightGBM at scale: 100 synthetic series x 6 years, 12 origins.

Targets: backtest in under 2 minutes and under 4 GiB peak memory on 2 cores.
The 100 series are 25 synthetic areas x 4 ARP categories from the same world generator.

Run: ``python -m experiments.bench benchmark=scale`` (config: conf/benchmark/scale.yaml).
"""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from experiments.harness import ROOT, BenchmarkReport, model_label
from forecasting.backtest import rolling_origin_backtest
from forecasting.io import read_population
from forecasting.metrics import summary_metrics
from forecasting.pipeline import build_forecaster
from forecasting.synthetic import World, simulate_daily_counts

TARGET_SECONDS, TARGET_GIB = 120, 4


def many_series(n_areas: int) -> pd.DataFrame:
    """``n_areas`` synthetic areas of growing size and age, each with the four ARP categories."""
    spec = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/generate.yaml").world, resolve=True)
    spec["areas"] = [
        {"name": f"area{i:02d}", "population": 300_000 + 40_000 * i, "older_tilt": 0.8 + 0.025 * i}
        for i in range(n_areas)
    ]
    national = read_population(ROOT / "data/external/ons_population/england_npp2018_principal_5yr.csv")
    counts = simulate_daily_counts(World.from_dict(spec), national)
    return counts[["unique_id", "ds", "y", "y_expected"]]


def run(
    workdir: Path, n_areas: int, n_origins: int, horizon: int, step: int, model: Mapping
) -> BenchmarkReport:
    data = many_series(n_areas)
    forecaster = build_forecaster(model)
    load_before = os.getloadavg()[0]
    cpu_before = time.process_time()
    start = time.perf_counter()
    backtest = rolling_origin_backtest(forecaster, data, horizon, n_origins, step, progress=True)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_before
    load_after = os.getloadavg()[0]
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB
    scores = summary_metrics(backtest, [80, 95])
    lines = [
        f"# Scale benchmark: {model_label(forecaster)}, {data['unique_id'].nunique()} series, "
        f"{n_origins} origins",
        "",
        "Produced by `python -m experiments.bench benchmark=scale`, logged to the MLflow experiment",
        "`benchmark-scale`.",
        "",
        f"- series: {data['unique_id'].nunique()}, days each: {data['ds'].nunique()}, rows: {len(data):,}",
        f"- origins: {n_origins} ({step} days apart), horizon {horizon} days",
        f"- wall time: {seconds:.1f} s (target < {TARGET_SECONDS} s): "
        f"{'met' if seconds < TARGET_SECONDS else 'missed'}",
        f"- CPU time (all threads): {cpu_seconds:.1f} s; load average {load_before:.1f} before and "
        f"{load_after:.1f} after (above {os.cpu_count()} means other work shared the cores, so wall time is "
        "pessimistic)",
        f"- peak memory (max RSS of the process): {peak_gib:.2f} GiB (target < {TARGET_GIB} GiB): "
        f"{'met' if peak_gib < TARGET_GIB else 'missed'}",
        f"- accuracy: MASE {scores['mase']:.3f}, MAE / oracle MAE {scores['mae_vs_oracle']:.3f}, "
        f"coverage 80/95 % {scores['coverage_80']:.3f} / {scores['coverage_95']:.3f}",
        f"- machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}",
    ]
    metrics = {
        "wall_seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_gib": peak_gib,
        "mase": scores["mase"],
        "mae_vs_oracle": scores["mae_vs_oracle"],
        "coverage_80": scores["coverage_80"],
        "coverage_95": scores["coverage_95"],
    }
    return BenchmarkReport(markdown="\n".join(lines), metrics=metrics)
