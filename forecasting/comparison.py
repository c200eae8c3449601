"""Is one forecaster really better than another? Uncertainty over backtest origins.

A backtest's score is an average over origins whose forecast windows overlap, so neither the
spread of per-origin scores nor a plain t-test says how sure a difference is. Here:

- :func:`per_origin_loss`: one loss per origin (MASE or CRPS over days 1..h, pooled over series);
- :func:`block_bootstrap_interval`: a moving-block bootstrap interval of the mean over origins,
  with blocks long enough to span the overlap of neighbouring windows (Kunsch 1989);
- :func:`diebold_mariano`: the paired Diebold-Mariano (1995) test on per-origin loss differences
  with the Harvey, Leybourne and Newbold (1997) small-sample correction, the autocovariances of
  the differences up to the overlap of the windows (``k - 1`` lags) in the variance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from forecasting.metrics import crps_from_quantiles, quantile_columns


def per_origin_loss(
    backtest: pd.DataFrame, metric: str, horizon: int, level: Sequence[int] = ()
) -> pd.Series:
    """Loss of each origin over days 1..``horizon``, pooled over series; indexed by ``cutoff``.

    ``metric`` is ``mase`` (mean absolute error over the MASE scale), ``mae`` or ``crps`` (from
    the mean and the central intervals at ``level``, see :func:`forecasting.metrics.crps_from_quantiles`).
    """
    rows = backtest[backtest["h"] <= horizon]
    if metric == "mase":
        values = (rows["y"] - rows["mean"]).abs() / rows["scale"]
        return values.groupby(rows["cutoff"]).mean()
    if metric == "mae":
        return (rows["y"] - rows["mean"]).abs().groupby(rows["cutoff"]).mean()
    if metric == "crps":
        columns = quantile_columns(level)
        return rows.groupby("cutoff").apply(
            lambda fold: crps_from_quantiles(fold["y"], {q: fold[c].to_numpy() for q, c in columns.items()}),
            include_groups=False,
        )
    raise ValueError(f"unknown loss {metric!r}; choose mase, mae or crps")


def overlap_lags(horizon: int, step: int) -> int:
    """Origins ``step`` days apart forecasting ``horizon`` days share days with the next
    ``ceil(horizon / step) - 1`` origins: the lags over which their losses are correlated."""
    return max(math.ceil(horizon / step) - 1, 0)


def block_bootstrap_interval(
    losses: Sequence[float], block: int, level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the mean of time-ordered ``losses`` by a moving-block bootstrap."""
    x = np.asarray(losses, dtype=float)
    n = len(x)
    if n == 0:
        raise ValueError("no losses to resample")
    block = int(min(max(block, 1), n))
    rng = np.random.default_rng(seed)
    n_blocks = math.ceil(n / block)
    starts = rng.integers(0, n - block + 1, size=(n_boot, n_blocks))
    index = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_boot, -1)[:, :n]
    means = x[index].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class DieboldMariano:
    """Result of a paired test: ``mean_difference`` < 0 means the first forecaster's loss is lower."""

    mean_difference: float
    statistic: float
    p_value: float
    n: int
    lags: int


def diebold_mariano(loss_a: Sequence[float], loss_b: Sequence[float], lags: int) -> DieboldMariano:
    """Two-sided Diebold-Mariano test of equal expected loss, HLN-corrected, Student t(n - 1).

    ``lags`` autocovariances of the loss differences enter the long-run variance (the truncated
    kernel of the original test, ``k - 1`` for ``k``-step-ahead losses); if that estimate is not
    positive, Bartlett weights (Newey-West) are used instead, which always give a positive one.
    """
    d = np.asarray(loss_a, dtype=float) - np.asarray(loss_b, dtype=float)
    n = len(d)
    if n < 3:
        raise ValueError(f"a Diebold-Mariano test needs at least 3 paired losses, got {n}")
    lags = int(min(max(lags, 0), n - 2))
    centred = d - d.mean()
    gamma = [float(centred[k:] @ centred[: n - k]) / n for k in range(lags + 1)]
    variance = gamma[0] + 2 * sum(gamma[1:])
    if variance <= 0:
        variance = gamma[0] + 2 * sum((1 - k / (lags + 1)) * gamma[k] for k in range(1, lags + 1))
    if variance <= 0:  # every difference the same: no noise to test against
        statistic = 0.0 if d.mean() == 0 else math.copysign(math.inf, d.mean())
        return DieboldMariano(float(d.mean()), statistic, 0.0 if d.mean() else 1.0, n, lags)
    statistic = d.mean() / math.sqrt(variance / n)
    horizon = lags + 1  # HLN's h: the number of steps ahead whose errors overlap
    correction = math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    statistic *= correction
    p_value = 2 * stats.t.sf(abs(statistic), df=n - 1)
    return DieboldMariano(float(d.mean()), float(statistic), float(p_value), n, lags)
