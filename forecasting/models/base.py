"""The estimator interface every daily-demand model follows.

``fit(df)`` takes long-format history (``unique_id, ds, y``); ``predict(h, level)`` returns one row
per series and future day with ``mean`` and, for each level L, ``lo_L`` and ``hi_L``: the central
L % prediction interval. Following scikit-learn, ``__init__`` only stores hyperparameters and
fitted state lives in attributes ending in ``_``, so ``sklearn.base.clone`` gives a fresh copy for
each backtest origin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from forecasting.data import series_end_dates

DEFAULT_LEVELS = (80, 95)


def interval_columns(level: Sequence[int]) -> list[str]:
    """Column names of the intervals for ``level``, e.g. ``['lo_80', 'hi_80']``."""
    return [f"{side}_{int(lv)}" for lv in level for side in ("lo", "hi")]


def check_levels(level: Sequence[int]) -> list[int]:
    """Levels as sorted ints in (0, 100), or a ValueError naming the bad one."""
    levels = sorted({int(lv) for lv in level})
    for lv in levels:
        if not 0 < lv < 100:
            raise ValueError(f"interval level {lv} must be between 0 and 100 (exclusive)")
    return levels


class Forecaster(BaseEstimator):
    """Base class: keeps each series' last date and checks ``predict`` arguments."""

    def _remember_history(self, df: pd.DataFrame) -> None:
        self.series_ = np.array(sorted(df["unique_id"].unique()))
        self.last_dates_ = series_end_dates(df)

    def predict(self, h: int, level: Sequence[int] = DEFAULT_LEVELS) -> pd.DataFrame:
        """Forecast ``h`` days after each series' last date.

        Returns
        -------
        DataFrame
            ``unique_id, ds, mean`` and ``lo_L, hi_L`` for each level L, sorted by series and date.
        """
        check_is_fitted(self, "last_dates_")
        if int(h) < 1:
            raise ValueError(f"horizon h must be at least 1 day, got {h}")
        forecast = self._predict(int(h), check_levels(level))
        return forecast.sort_values(["unique_id", "ds"], ignore_index=True)

    def _predict(self, h: int, level: list[int]) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError
