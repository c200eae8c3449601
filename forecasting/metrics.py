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


def mean_deviation_scale(y_train: np.ndarray | pd.Series) -> float:
    """In-sample mean absolute deviation from the series mean: MASE's other published denominator.

    Used where the seasonal naive's in-sample error is not the chosen reference, e.g. the
    Rostami-Tabar and Hyndman (2025) protocol on Welsh ambulance incidents.
    """
    y = np.asarray(y_train, dtype=float)
    if len(y) < 2:
        raise ValueError(f"MASE scale needs at least 2 training values, got {len(y)}")
    return float(np.mean(np.abs(y - y.mean())))


# How MASE's denominator is computed from a series' training data (``backtest.mase_scale``).
MASE_SCALES = ("seasonal_naive", "mean_deviation")


def mase_scale(
    y_train: np.ndarray | pd.Series, kind: str = "seasonal_naive", season_length: int = 7
) -> float:
    """MASE denominator of one series: ``seasonal_naive`` (in-sample MAE of the seasonal naive
    forecast, Hyndman & Koehler 2006) or ``mean_deviation`` (mean absolute deviation from the mean)."""
    if kind == "seasonal_naive":
        return seasonal_naive_scale(y_train, season_length)
    if kind == "mean_deviation":
        return mean_deviation_scale(y_train)
    raise ValueError(f"unknown MASE scale {kind!r}; choose one of {', '.join(MASE_SCALES)}")


def mase(y: np.ndarray, y_hat: np.ndarray, scale: float | np.ndarray) -> float:
    """Mean absolute scaled error: absolute errors divided by the seasonal naive in-sample MAE."""
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(y_hat)) / np.asarray(scale)))


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Share of actuals inside their interval (bounds included)."""
    y = np.asarray(y)
    return float(np.mean((y >= np.asarray(lo)) & (y <= np.asarray(hi))))


def smape(y: np.ndarray, y_hat: np.ndarray) -> float:
    """Symmetric MAPE in %, 200 |y - y_hat| / (|y| + |y_hat|), with 0/0 counted as 0."""
    y, y_hat = np.asarray(y, dtype=float), np.asarray(y_hat, dtype=float)
    denominator = np.abs(y) + np.abs(y_hat)
    ratio = np.divide(2 * np.abs(y - y_hat), denominator, out=np.zeros_like(y), where=denominator > 0)
    return float(100 * np.mean(ratio))


def pinball(y: np.ndarray, q_hat: np.ndarray, q: float) -> float:
    """Mean pinball (quantile) loss of ``q_hat`` as the ``q`` quantile."""
    diff = np.asarray(y, dtype=float) - np.asarray(q_hat, dtype=float)
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def winkler(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: float) -> float:
    """Mean interval (Winkler) score: width plus 2/alpha times any miss (Gneiting & Raftery 2007)."""
    y, lo, hi = (np.asarray(a, dtype=float) for a in (y, lo, hi))
    alpha = 1 - level / 100
    penalty = (2 / alpha) * (np.maximum(lo - y, 0) + np.maximum(y - hi, 0))
    return float(np.mean(hi - lo + penalty))


def quantile_columns(level: Sequence[int]) -> dict[float, str]:
    """Quantile level -> column for the forecast quantiles implied by central intervals and the mean.

    The mean stands in for the median, which is close for counts of tens or more.
    """
    columns = {0.5: "mean"}
    for lv in level:
        tail = (1 - lv / 100) / 2
        columns[round(tail, 6)] = f"lo_{lv}"
        columns[round(1 - tail, 6)] = f"hi_{lv}"
    return dict(sorted(columns.items()))


def crps_from_quantiles(y: np.ndarray, quantiles: dict[float, np.ndarray]) -> float:
    """CRPS approximated by twice the average pinball loss over the available quantiles.

    With quantiles at levels q_1..q_K this is the discrete form of CRPS = 2 * integral of the
    pinball loss over q in (0, 1) (Gneiting & Raftery 2007); more quantiles, closer approximation.
    """
    return float(2 * np.mean([pinball(y, values, q) for q, values in quantiles.items()]))


def _frame_metrics(frame: pd.DataFrame, level: Sequence[int]) -> dict[str, float]:
    out = {
        "mae": mae(frame["y"], frame["mean"]),
        "rmse": rmse(frame["y"], frame["mean"]),
        "mase": mase(frame["y"], frame["mean"], frame["scale"]),
        "smape": smape(frame["y"], frame["mean"]),
    }
    quantiles = {q: frame[column].to_numpy() for q, column in quantile_columns(level).items()}
    out["crps"] = crps_from_quantiles(frame["y"], quantiles)
    out["pinball"] = float(np.mean([pinball(frame["y"], v, q) for q, v in quantiles.items()]))
    for lv in level:
        out[f"coverage_{lv}"] = coverage(frame["y"], frame[f"lo_{lv}"], frame[f"hi_{lv}"])
        out[f"winkler_{lv}"] = winkler(frame["y"], frame[f"lo_{lv}"], frame[f"hi_{lv}"], lv)
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


def metrics_within_horizon(
    backtest: pd.DataFrame, level: Sequence[int], horizons: Sequence[int]
) -> pd.DataFrame:
    """Metrics over the first ``h`` days of each forecast, for each ``h`` in ``horizons``.

    This is how Monks et al. (2023) report: the error "at 28 days" is over days 1..28.
    """
    rows = {h: _frame_metrics(backtest[backtest["h"] <= h], level) for h in horizons}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("h").reset_index()


def band_label(band: Sequence[int]) -> str:
    """``h1_42`` for the band of days 1..42 ahead: a name that is also a valid MLflow metric key."""
    low, high = band
    return f"h{int(low)}_{int(high)}"


def check_bands(bands: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """Horizon bands as ``(first, last)`` day pairs, refusing empty or reversed bands."""
    out = []
    for band in bands:
        if len(band) != 2 or int(band[0]) < 1 or int(band[1]) < int(band[0]):
            raise ValueError(
                f"horizon band {list(band)} must be [first, last] days ahead with 1 <= first <= last"
            )
        out.append((int(band[0]), int(band[1])))
    return out


def metrics_by_band(
    backtest: pd.DataFrame, level: Sequence[int], bands: Sequence[Sequence[int]]
) -> pd.DataFrame:
    """Metrics over days ``first..last`` ahead for each band, pooled over series and origins.

    Published protocols often score a band rather than all days up to ``h``: e.g. days 43-84 of
    84-day forecasts (Rostami-Tabar and Hyndman 2025). A band with no rows in the backtest (beyond
    its horizon) is refused rather than reported as missing.
    """
    rows = {}
    for low, high in check_bands(bands):
        frame = backtest[backtest["h"].between(low, high)]
        if frame.empty:
            raise ValueError(
                f"horizon band {low}-{high} has no forecasts: the backtest horizon is {backtest['h'].max()}"
            )
        rows[band_label((low, high))] = _frame_metrics(frame, level)
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("band").reset_index()


def band_summary(by_band: pd.DataFrame) -> dict[str, float]:
    """A :func:`metrics_by_band` table as flat ``<metric>_<band>`` numbers, e.g. ``mase_h43_84``."""
    out = {}
    for row in by_band.to_dict("records"):
        band = row.pop("band")
        out |= {f"{metric}_{band}": float(value) for metric, value in row.items()}
    return out
