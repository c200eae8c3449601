"""The estimator interface every daily-demand model follows.

``fit(df)`` takes long-format history (``unique_id, ds, y`` and any ``x_*`` extra regressors);
``predict(h, level, future)`` returns one row per series and future day with ``mean`` and, for each
level L, ``lo_L`` and ``hi_L``: the central L % prediction interval. A model that uses regressors
and was fitted with some needs their values for the forecast days in ``future`` (``unique_id, ds,
x_*``); models that do not use them ignore both the columns and ``future``. Following
scikit-learn, ``__init__`` only stores hyperparameters and fitted state lives in attributes ending
in ``_``, so ``sklearn.base.clone`` gives a fresh copy for each backtest origin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from forecasting.data import regressor_columns, series_end_dates
from forecasting.models.regressors import future_frame

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
    """Base class: keeps each series' last date and regressors, and checks ``predict`` arguments.

    Subclasses that learn from ``x_*`` columns set ``uses_regressors = True`` and read them from
    the frame :meth:`_predict` receives; the others never see them.
    """

    uses_regressors = False

    def _remember_history(self, df: pd.DataFrame) -> None:
        self.series_ = np.array(sorted(df["unique_id"].unique()))
        self.last_dates_ = series_end_dates(df)
        self.regressors_ = regressor_columns(df) if self.uses_regressors else []

    def min_history_days(self) -> int:
        """Days of history each series needs for :meth:`fit` (models that need more say so).

        The backtest checks every series against this before its first fit, so a short series is
        refused with the settings that fix it rather than by the model in the middle of a fold.
        """
        return 1

    @property
    def fitted_regressors(self) -> list[str]:
        """The ``x_*`` columns this fitted model needs in ``future`` (empty for most)."""
        # Models pickled before regressors existed have no `regressors_`: they use none.
        return list(getattr(self, "regressors_", []))

    def predict(
        self,
        h: int,
        level: Sequence[int] = DEFAULT_LEVELS,
        future: pd.DataFrame | None = None,
        series: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Forecast ``h`` days after each series' last date.

        Parameters
        ----------
        h : int
            Days to forecast.
        level : sequence of int
            Central prediction-interval levels, in %.
        future : DataFrame, optional
            ``unique_id, ds`` and the model's :attr:`fitted_regressors` for at least each series'
            next ``h`` days (other rows are ignored). Needed only when the model was fitted with
            regressors; otherwise ignored.
        series : sequence of str, optional
            Forecast only these series (default: all that the model was fitted on).

        Returns
        -------
        DataFrame
            ``unique_id, ds, mean`` and ``lo_L, hi_L`` for each level L, sorted by series and date.

        Raises
        ------
        ValueError
            A bad ``h``, level or series; :class:`~forecasting.models.regressors.FutureRegressorError`
            when ``future`` lacks regressor values the model needs.
        """
        check_is_fitted(self, "last_dates_")
        if int(h) < 1:
            raise ValueError(f"horizon h must be at least 1 day, got {h}")
        levels = check_levels(level)
        frame = future_frame(self._selected(series), int(h), self.fitted_regressors, future)
        forecast = self._predict(frame, int(h), levels)
        return forecast.sort_values(["unique_id", "ds"], ignore_index=True)

    def _selected(self, series: Sequence[str] | None) -> pd.Series:
        """Last dates of the series to forecast."""
        if series is None:
            return self.last_dates_
        wanted = [str(uid) for uid in dict.fromkeys(series)]
        if unknown := sorted(set(wanted) - set(self.last_dates_.index)):
            known = list(self.last_dates_.index)
            raise ValueError(f"unknown series {unknown[:5]}; this model forecasts {known}")
        if not wanted:
            raise ValueError("series is empty: name at least one series to forecast")
        return self.last_dates_[sorted(wanted)]

    def _predict(self, frame: pd.DataFrame, h: int, level: list[int]) -> pd.DataFrame:  # pragma: no cover
        """Forecast the rows of ``frame``: ``unique_id, ds`` (``h`` days per series, by series then
        date) and the fitted regressors. Returns ``frame``'s keys with ``mean`` and the bounds."""
        raise NotImplementedError
