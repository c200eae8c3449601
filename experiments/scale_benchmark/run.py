"""Speed and memory of the global LightGBM at scale: 100 synthetic series x 6 years, 12 origins.

Targets: backtest in under 2 minutes and under 4 GiB peak memory on 2 cores.
The 100 series are 25 synthetic areas x 4 ARP categories from the same world generator.

Run: .venv/bin/python experiments/scale_benchmark/run.py  (writes results.md here)
"""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path

from omegaconf import OmegaConf

from forecasting.backtest import rolling_origin_backtest
from forecasting.io import atomic_write, read_population
from forecasting.metrics import summary_metrics
from forecasting.models import GlobalLightGBM
from forecasting.synthetic import World, simulate_daily_counts

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
N_AREAS, N_ORIGINS, HORIZON, STEP = 25, 12, 84, 28


def hundred_series():
    spec = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/generate.yaml").world, resolve=True)
    spec["areas"] = [
        {"name": f"area{i:02d}", "population": 300_000 + 40_000 * i, "older_tilt": 0.8 + 0.025 * i}
        for i in range(N_AREAS)
    ]
    national = read_population(ROOT / "data/external/ons_population/england_npp2018_principal_5yr.csv")
    counts = simulate_daily_counts(World.from_dict(spec), national)
    return counts[["unique_id", "ds", "y", "y_expected"]]


def main() -> None:
    data = hundred_series()
    load_before = os.getloadavg()[0]
    cpu_before = time.process_time()
    start = time.perf_counter()
    backtest = rolling_origin_backtest(GlobalLightGBM(), data, HORIZON, N_ORIGINS, STEP, progress=True)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_before
    load_after = os.getloadavg()[0]
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB
    scores = summary_metrics(backtest, [80, 95])
    lines = [
        "# Scale benchmark: global LightGBM, 100 series x 6 years, 12 origins",
        "",
        f"- series: {data['unique_id'].nunique()}, days each: {data['ds'].nunique()}, rows: {len(data):,}",
        f"- origins: {N_ORIGINS} ({STEP} days apart), horizon {HORIZON} days, two fits per origin "
        "(calibration + final)",
        f"- wall time: {seconds:.1f} s (target < 120 s): {'met' if seconds < 120 else 'missed'}",
        f"- CPU time (all threads): {cpu_seconds:.1f} s; load average {load_before:.1f} before and "
        f"{load_after:.1f} after (above 2 means other work shared the 2 cores, so wall time is pessimistic)",
        f"- peak memory (max RSS of the process): {peak_gib:.2f} GiB (target < 4 GiB): "
        f"{'met' if peak_gib < 4 else 'missed'}",
        f"- accuracy: MASE {scores['mase']:.3f}, MAE / oracle MAE {scores['mae_vs_oracle']:.3f}, "
        f"coverage 80/95 % {scores['coverage_80']:.3f} / {scores['coverage_95']:.3f}",
        f"- machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        "",
    ]
    atomic_write(HERE / "results.md", lambda f: f.write("\n".join(lines)))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
