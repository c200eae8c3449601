"""How a backtest splits into independent tasks for an engine: origins, and series chunks when
the model fits each series on its own.

A per-series model (ETS, ARIMA, GLM, seasonal naive, or an ensemble of such) gives every series
the same forecast whether it is fitted alone or beside others, so its backtest can be cut into
(origin x series chunk) tasks with identical results. A global model per partition key
(:class:`~forecasting.models.per_key.PerKey`) fits the series of each key alone: its chunks hold
whole keys. A global model over all series (LightGBM across series, the conformal wrapper's pooled
residuals) learns from all series at once: its tasks are origins only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forecasting.models.base import Forecaster
from forecasting.models.ensemble import Ensemble
from forecasting.models.local import LocalForecaster
from forecasting.models.per_key import PerKey, series_key
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


def task_chunks(
    forecaster: Forecaster, series: Sequence[str], per_task: int | None
) -> list[tuple[str, ...] | None]:
    """The series chunks of a backtest's tasks (each origin runs once per chunk; ``[None]``: all).

    Per-series models: chunks of ``per_task`` series. A model per partition key: one chunk per key,
    or consecutive whole keys packed up to ``per_task`` series when that is given (a key larger
    than ``per_task`` is a chunk of its own). Any other model: ``[None]``.
    """
    if fits_series_alone(forecaster):
        return series_chunks(series, per_task)
    if not isinstance(forecaster, PerKey):
        return [None]
    ordered = np.sort(np.asarray(series, dtype=object))
    keys = series_key(ordered, forecaster.separator).to_numpy()
    chunks: list[tuple[str, ...]] = []
    current: list[str] = []
    for key in dict.fromkeys(keys):
        members = ordered[keys == key].tolist()
        if current and (not per_task or len(current) + len(members) > per_task):
            chunks.append(tuple(current))
            current = []
        current += members
    if current:
        chunks.append(tuple(current))
    return chunks if len(chunks) > 1 else [None]
