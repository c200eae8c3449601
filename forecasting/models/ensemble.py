"""Combining forecasters: the mean (or median) of their means and of their quantiles."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecasting.models.base import Forecaster, interval_columns


class Ensemble(Forecaster):
    """Combine member forecasts day by day.

    Interval bounds are combined like the means, quantile by quantile ("Vincentization";
    Lichtendahl, Grushka-Cockayne & Winkler 2013), which keeps the combined intervals about as
    wide as the members' while the means gain from the combination.

    Every member sees the same history, extra ``x_*`` regressors included; ``predict``'s
    ``future`` is passed on to them, and needed when any member was fitted with regressors.

    Parameters
    ----------
    members : list of Forecaster
        Models to combine; each is fitted on the same history.
    combine : {"mean", "median"}
        How to combine members on each day.
    weights : list of float, optional
        Weights for ``combine="mean"`` (e.g. chosen on a backtest); equal when None.
    """

    def __init__(
        self, members: Sequence[Forecaster], combine: str = "mean", weights: Sequence[float] | None = None
    ):
        self.members = members
        self.combine = combine
        self.weights = weights

    def min_history_days(self) -> int:
        return max((member.min_history_days() for member in self.members), default=1)

    def fit(self, df: pd.DataFrame) -> Ensemble:
        if self.combine not in {"mean", "median"}:
            raise ValueError(f"combine must be 'mean' or 'median', got {self.combine!r}")
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        if self.weights is not None and (len(self.weights) != len(self.members) or min(self.weights) < 0):
            raise ValueError("weights must be one non-negative number per member")
        self._remember_history(df)
        self.members_ = [member.fit(df) for member in self.members]
        # The ensemble needs the regressors of any of its members, and no others.
        self.regressors_ = sorted({name for member in self.members_ for name in member.fitted_regressors})
        return self

    def _predict(self, frame: pd.DataFrame, h: int, level: list[int]) -> pd.DataFrame:
        columns = ["mean", *interval_columns(level)]
        series = frame["unique_id"].unique().tolist()
        forecasts = [member.predict(h, level, future=frame, series=series) for member in self.members_]
        stacked = np.stack([forecast[columns].to_numpy() for forecast in forecasts])
        if self.combine == "median":
            combined = np.median(stacked, axis=0)
        else:
            weights = np.ones(len(forecasts)) if self.weights is None else np.asarray(self.weights, float)
            combined = np.tensordot(weights / weights.sum(), stacked, axes=1)
        out = forecasts[0][["unique_id", "ds"]].copy()
        out[columns] = combined
        return out
