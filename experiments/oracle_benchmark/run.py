"""How close each model gets to the oracle on the synthetic world, horizons 1..84.

The oracle forecasts the true expected value the generator used, so its MAE is the noise no model
can remove. A ratio of 1.00 means a model is as good as knowing the truth. Target: <= 1.05 for the
best model.

Run: .venv/bin/python experiments/oracle_benchmark/run.py  (writes results.md and results.csv here)
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from forecasting.backtest import rolling_origin_backtest
from forecasting.data import load_daily_counts
from forecasting.io import atomic_write
from forecasting.metrics import mae
from forecasting.models import ArimaRegression, CalendarGLM, Ensemble, GlobalLightGBM, SeasonalNaive

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HORIZON, N_ORIGINS, STEP = 84, 12, 28
BUCKETS = [(1, 7), (8, 28), (29, 56), (57, 84), (1, 84)]
MODELS = {
    "seasonal naive": SeasonalNaive(),
    "CalendarGLM": CalendarGLM(),
    "ArimaRegression": ArimaRegression(),
    "GlobalLightGBM": GlobalLightGBM(),
    "Ensemble (GlobalLightGBM + CalendarGLM)": Ensemble([GlobalLightGBM(), CalendarGLM()]),
}


def ratios(backtest: pd.DataFrame) -> dict[str, float]:
    out = {}
    for lo, hi in BUCKETS:
        rows = backtest[backtest["h"].between(lo, hi)]
        out[f"h {lo}-{hi}"] = mae(rows["y"], rows["mean"]) / mae(rows["y"], rows["y_expected"])
    return out


def main() -> None:
    data = load_daily_counts(ROOT / "data/synthetic/daily_counts.csv", keep=["y_expected"])
    rows, times = {}, {}
    for name, model in MODELS.items():
        start = time.perf_counter()
        backtest = rolling_origin_backtest(model, data, HORIZON, N_ORIGINS, STEP)
        times[name] = time.perf_counter() - start
        rows[name] = ratios(backtest)
        print(f"{name}: {rows[name]['h 1-84']:.3f} ({times[name]:.0f} s)", flush=True)
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("model").assign(seconds=pd.Series(times))
    atomic_write(HERE / "results.csv", lambda f: table.to_csv(f, float_format="%.4f"))
    best = table["h 1-84"].idxmin()
    lines = [
        "# Oracle benchmark: MAE / oracle MAE on the synthetic world",
        "",
        f"{data['unique_id'].nunique()} series (7 areas x ARP categories), {N_ORIGINS} origins {STEP} days "
        f"apart, {HORIZON}-day forecasts. 1.00 = as good as knowing the true expected value.",
        "",
        "| model | " + " | ".join(f"h {lo}-{hi}" for lo, hi in BUCKETS) + " | wall time |",
        "|---|" + "---|" * (len(BUCKETS) + 1),
    ]
    for name, row in table.iterrows():
        cells = " | ".join(f"{row[f'h {lo}-{hi}']:.3f}" for lo, hi in BUCKETS)
        lines.append(f"| {name} | {cells} | {row['seconds']:.0f} s |")
    verdict = "met" if table.loc[best, "h 1-84"] <= 1.05 else "missed"
    lines += [
        "",
        f"Best: {best}, {table.loc[best, 'h 1-84']:.3f} over horizons 1-84 (target <= 1.05: {verdict}).",
        "",
    ]
    atomic_write(HERE / "results.md", lambda f: f.write("\n".join(lines)))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
