"""One copy of a global model per partition key (e.g. per trust): the national scale's split.

A global model (LightGBM across series) learns from every series it is given. With tens of
thousands of series, one model over all of them is one long fit that a cluster cannot split; one
model per key (the trust or area a series belongs to) gives independent fits, which an engine runs
as separate tasks (:mod:`forecasting.task_split`), and each key's forecast is the same whether its
fit ran beside the others or alone. It is a different model from one global fit over all series
(each key's trees see only that key's series), to be chosen on a backtest like any other.

The key of a series is the part of its ``unique_id`` before the first ``separator`` (``area03``
for ``area03/C2``, a trust for ``trust/area/category`` ids).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sklearn.base import clone

from forecasting.models.base import Forecaster


def series_key(series: pd.Series | Sequence[str], separator: str = "/") -> pd.Series:
    """The partition key of each series id: the text before the first ``separator``."""
    ids = pd.Series(series, dtype="str")
    return ids.str.split(separator, n=1).str[0]


class PerKey(Forecaster):
    """A fresh copy of ``model`` fitted on the series of each partition key.

    Parameters
    ----------
    model : Forecaster
        The global model copied for each key (e.g. :class:`GlobalLightGBM`).
    separator : str
        A series' key is its ``unique_id`` up to the first ``separator``.
    """

    def __init__(self, model: Forecaster, separator: str = "/"):
        self.model = model
        self.separator = separator

    @property
    def uses_regressors(self) -> bool:
        return bool(getattr(self.model, "uses_regressors", False))

    def min_history_days(self) -> int:
        return self.model.min_history_days() if hasattr(self.model, "min_history_days") else 1

    def fit(self, df: pd.DataFrame) -> PerKey:
        if not self.separator:
            raise ValueError("model.separator must be a non-empty text, e.g. '/'")
        ids = df["unique_id"].astype("str")
        if not ids.str.contains(self.separator, regex=False).any():
            raise ValueError(
                f"model.separator={self.separator!r}: no series id contains it, so every series would "
                f"be its own key (e.g. {ids.iloc[0]!r}); give the separator between the key and the "
                "rest of the id, or use the global model itself"
            )
        self._remember_history(df)
        keys = series_key(ids, self.separator).to_numpy()
        self.models_ = {key: clone(self.model).fit(part) for key, part in df.groupby(keys, sort=True)}
        self.regressors_ = sorted({name for m in self.models_.values() for name in m.fitted_regressors})
        return self

    def _predict(self, frame: pd.DataFrame, h: int, level: list[int]) -> pd.DataFrame:
        keys = series_key(frame["unique_id"], self.separator).to_numpy()
        forecasts = [
            self.models_[key].predict(h, level, future=part, series=part["unique_id"].unique().tolist())
            for key, part in frame.groupby(keys, sort=True)
        ]
        return pd.concat(forecasts, ignore_index=True)
