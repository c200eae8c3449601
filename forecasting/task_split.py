"""How a backtest splits into independent tasks for an engine: origins, and series chunks when
the model fits each series on its own.

A per-series model (ETS, ARIMA, GLM, seasonal naive, or an ensemble of such) gives every series
the same forecast whether it is fitted alone or beside others, so its backtest can be cut into
(origin x series chunk) tasks with identical results. A global model (LightGBM across series, the
conformal wrapper's pooled residuals) learns from all series at once: its tasks are origins only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forecasting.models.base import Forecaster
from forecasting.models.ensemble import Ensemble
from forecasting.models.local import LocalForecaster
from forecasting.models.seasonal_naive import SeasonalNaive


def fits_series_alone(forecaster: Forecaster) -> bool:
    """True when each series' forecast depends on that series' history only."""
    if isinstance(forecaster, Ensemble):
        return all(fits_series_alone(member) for member in forecaster.members)
    return isinstance(forecaster, LocalForecaster | SeasonalNaive)


def series_chunks(series: Sequence[str], per_task: int | None) -> list[tuple[str, ...] | None]:
    """Consecutive chunks of at most ``per_task`` series (sorted), or ``[None]`` for all in one."""
    if not per_task or len(series) <= per_task:
        return [None]
    ordered = np.sort(np.asarray(series, dtype=object))
    return [tuple(ordered[i : i + per_task]) for i in range(0, len(ordered), per_task)]
