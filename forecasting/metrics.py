"""Point and interval accuracy of forecasts, per horizon.

All functions take plain arrays or a backtest frame (see :mod:`forecasting.backtest`) and return
numbers or frames; nothing here knows about files or tracking.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def mae(y: np.ndarray, y_hat: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(y_hat))))


def rmse(y: np.ndarray, y_hat: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(y) - np.asarray(y_hat)) ** 2)))


def seasonal_naive_scale(y_train: np.ndarray | pd.Series, season_length: int = 7) -> float:
    """In-sample MAE of the seasonal naive forecast: the denominator of MASE (Hyndman & Koehler 2006)."""
    y = np.asarray(y_train, dtype=float)
    if len(y) <= season_length:
        raise ValueError(f"MASE scale needs more than {season_length} training values, got {len(y)}")
    return float(np.mean(np.abs(y[season_length:] - y[:-season_length])))


def mase(y: np.ndarray, y_hat: np.ndarray, scale: float | np.ndarray) -> float:
    """Mean absolute scaled error: absolute errors divided by the seasonal naive in-sample MAE."""
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(y_hat)) / np.asarray(scale)))


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Share of actuals inside their interval (bounds included)."""
    y = np.asarray(y)
    return float(np.mean((y >= np.asarray(lo)) & (y <= np.asarray(hi))))


def _frame_metrics(frame: pd.DataFrame, level: Sequence[int]) -> dict[str, float]:
    out = {
        "mae": mae(frame["y"], frame["mean"]),
        "rmse": rmse(frame["y"], frame["mean"]),
        "mase": mase(frame["y"], frame["mean"], frame["scale"]),
    }
    for lv in level:
        out[f"coverage_{lv}"] = coverage(frame["y"], frame[f"lo_{lv}"], frame[f"hi_{lv}"])
    if "y_expected" in frame:
        # The oracle knows the true expected value: its MAE is the irreducible noise.
        out["oracle_mae"] = mae(frame["y"], frame["y_expected"])
        out["mae_vs_oracle"] = out["mae"] / out["oracle_mae"] if out["oracle_mae"] > 0 else np.nan
    return out


def metrics_by_horizon(backtest: pd.DataFrame, level: Sequence[int]) -> pd.DataFrame:
    """Metrics for each number of days ahead ``h``, pooled over series and origins."""
    rows = {h: _frame_metrics(group, level) for h, group in backtest.groupby("h")}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("h").reset_index()


def summary_metrics(backtest: pd.DataFrame, level: Sequence[int]) -> dict[str, float]:
    """Metrics over every row of a backtest (all horizons, series and origins)."""
    return _frame_metrics(backtest, level)
