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

    def fit(self, df: pd.DataFrame) -> Ensemble:
        if self.combine not in {"mean", "median"}:
            raise ValueError(f"combine must be 'mean' or 'median', got {self.combine!r}")
        if not self.members:
            raise ValueError("an ensemble needs at least one member")
        if self.weights is not None and (len(self.weights) != len(self.members) or min(self.weights) < 0):
            raise ValueError("weights must be one non-negative number per member")
        self._remember_history(df)
        self.members_ = [member.fit(df) for member in self.members]
        return self

    def _predict(self, h: int, level: list[int]) -> pd.DataFrame:
        columns = ["mean", *interval_columns(level)]
        forecasts = [member.predict(h, level) for member in self.members_]
        stacked = np.stack([forecast[columns].to_numpy() for forecast in forecasts])
        if self.combine == "median":
            combined = np.median(stacked, axis=0)
        else:
            weights = np.ones(len(forecasts)) if self.weights is None else np.asarray(self.weights, float)
            combined = np.tensordot(weights / weights.sum(), stacked, axes=1)
        out = forecasts[0][["unique_id", "ds"]].copy()
        out[columns] = combined
        return out
