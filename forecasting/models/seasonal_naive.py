"""Seasonal naive: tomorrow looks like the same weekday last week. The baseline to beat."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from forecasting.models.base import Forecaster


class SeasonalNaive(Forecaster):
    """Repeat the last ``season_length`` days; intervals widen with each further season.

    Interval width follows Hyndman & Athanasopoulos (FPP3, 5.5): the standard deviation of the
    in-sample seasonal differences times sqrt(k), k the number of whole seasons ahead, with a
    normal quantile; bounds below zero are cut at zero as counts cannot be negative.

    Extra ``x_*`` regressors in the history are ignored, and so is ``predict``'s ``future``.

    Parameters
    ----------
    season_length : int
        Period in days (7 for the weekly cycle of ambulance demand).
    """

    def __init__(self, season_length: int = 7):
        self.season_length = season_length

    def min_history_days(self) -> int:
        return int(self.season_length) + 1

    def fit(self, df: pd.DataFrame) -> SeasonalNaive:
        """Keep the last season of each series and the spread of its seasonal differences."""
        m = self.season_length
        lengths = df.groupby("unique_id").size()
        if (short := lengths[lengths <= m]).size:
            raise ValueError(
                f"seasonal naive needs more than {m} days per series; {short.index[0]!r} has "
                f"{short.iloc[0]}: add history, lower model.season_length or leave the series out with "
                f"data.exclude_series=[{short.index[0]}]"
            )
        self._remember_history(df)
        grouped = df.groupby("unique_id")["y"]
        self.last_season_ = {uid: y.to_numpy()[-m:] for uid, y in grouped}
        self.sigma_ = grouped.apply(lambda y: np.std(y.to_numpy()[m:] - y.to_numpy()[:-m], ddof=1))
        return self

    def _predict(self, frame: pd.DataFrame, h: int, level: list[int]) -> pd.DataFrame:
        m = self.season_length
        frame = frame[["unique_id", "ds"]].copy()
        series = frame["unique_id"].unique()
        step = np.tile(np.arange(h), len(series))
        mean = np.concatenate([np.resize(self.last_season_[uid], h) for uid in series])
        spread = frame["unique_id"].map(self.sigma_).to_numpy() * np.sqrt(step // m + 1)
        frame["mean"] = mean
        for lv in level:
            z = norm.ppf(0.5 + lv / 200)
            frame[f"lo_{lv}"] = np.maximum(mean - z * spread, 0.0)
            frame[f"hi_{lv}"] = mean + z * spread
        return frame
