"""The gate a model passes before it is registered: what it would serve must be plausible.

A backtest score says how a model did on the past; it cannot say that the fitted object about to
be served answers with sane numbers. A count of 1e12 in the training data once produced a
champion with the best MASE whose 80 % interval reached 2.8e65. So before registering, the
candidate's own served output is checked: finite, non-negative, intervals ordered, and forecasts
within a plausible multiple of the largest count in each series' history. The same checks are
applied to the current champion's served output when deciding whether to replace it.

Plain pandas/numpy in, a list of problems (or :class:`GateError`) out: no MLflow here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlops.errors import UserInputError

# A mean forecast above this multiple of a series' largest daily count is not a forecast, it is a
# broken fit: demand does not grow tenfold within a forecast horizon.
HISTORY_MULTIPLE = 10.0


class GateError(UserInputError):
    """A candidate model's scores or served output are not plausible; nothing was registered."""


def forecast_problems(
    forecast: pd.DataFrame,
    history_max: pd.Series,
    levels: Sequence[int],
    multiple: float = HISTORY_MULTIPLE,
) -> list[str]:
    """What is wrong with a served forecast, in words (empty when it passes).

    Parameters
    ----------
    forecast : DataFrame
        ``unique_id, ds, mean`` and ``lo_L, hi_L`` for each level L.
    history_max : Series
        Largest observed daily count per series (index ``unique_id``); series absent from it are
        checked for everything but the multiple.
    levels : sequence of int
        Interval levels whose columns must be present.
    multiple : float
        Largest plausible ratio of a series' mean forecast to its largest count in history.
    """
    problems = []
    columns = ["mean", *[f"{side}_{int(lv)}" for lv in levels for side in ("lo", "hi")]]
    missing = [c for c in columns if c not in forecast.columns]
    if missing:
        return [f"forecast lacks column(s) {missing}"]
    if forecast.empty:
        return ["forecast has no rows"]
    values = forecast[columns].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        problems.append(f"non-finite value(s): {_first(forecast, columns, ~np.isfinite(values))}")
    if (values < 0).any():
        problems.append(f"negative value(s): {_first(forecast, columns, values < 0)}")
    for lv in levels:
        lo, hi = forecast[f"lo_{int(lv)}"].to_numpy(float), forecast[f"hi_{int(lv)}"].to_numpy(float)
        mean = forecast["mean"].to_numpy(float)
        tolerance = 1e-9 * np.maximum(1.0, np.abs(mean))
        disordered = (lo > mean + tolerance) | (mean > hi + tolerance)
        if disordered.any():
            row = forecast.iloc[int(np.argmax(disordered))]
            problems.append(
                f"interval {lv} % not ordered lo <= mean <= hi ({_where(row)}: "
                f"{row[f'lo_{int(lv)}']:.4g} / {row['mean']:.4g} / {row[f'hi_{int(lv)}']:.4g})"
            )
    mean_by_series = forecast.groupby("unique_id")["mean"].mean()
    ceiling = history_max.reindex(mean_by_series.index) * multiple
    too_big = mean_by_series[mean_by_series > ceiling.fillna(np.inf).clip(lower=multiple)]
    if len(too_big):
        uid = too_big.index[0]
        problems.append(
            f"mean forecast for {uid!r} is {too_big.iloc[0]:.4g} a day, more than {multiple:g} x its largest "
            f"daily count in history ({history_max[uid]:.4g})"
        )
    # The same bound for the upper interval bounds: a fit can keep its mean sane and still
    # serve intervals reaching 1e65 (what a single 1e12 count did to a GLM).
    highs = [f"hi_{int(lv)}" for lv in levels]
    if highs and not problems:
        top = forecast.groupby("unique_id")[highs].max().max(axis=1)
        ceiling = history_max.reindex(top.index) * multiple
        too_high = top[top > ceiling.fillna(np.inf).clip(lower=multiple)]
        if len(too_high):
            uid = too_high.index[0]
            problems.append(
                f"upper interval bound for {uid!r} reaches {too_high.iloc[0]:.4g} a day, "
                f"more than {multiple:g} "
                f"x its largest daily count in history ({history_max[uid]:.4g})"
            )
    return problems


def score_problems(scores: dict[str, float], names: Sequence[str]) -> list[str]:
    """The scores among ``names`` that are not finite numbers, in words."""
    bad = {name: scores.get(name) for name in names if not np.isfinite(float(scores.get(name, np.nan)))}
    return [f"{name} is {value}" for name, value in bad.items()]


def probability_problems(p: np.ndarray) -> list[str]:
    """What is wrong with predicted probabilities (empty when all are finite and within [0, 1])."""
    p = np.asarray(p, dtype=float)
    problems = []
    if not np.isfinite(p).all():
        problems.append(f"{int((~np.isfinite(p)).sum())} probability(ies) not finite")
    finite = p[np.isfinite(p)]
    if ((finite < 0) | (finite > 1)).any():
        outside = finite[(finite < 0) | (finite > 1)]
        problems.append(f"{len(outside)} probability(ies) outside [0, 1] (e.g. {outside[0]:.4g})")
    return problems


def table_problems(table: pd.DataFrame, columns: Sequence[str], keys: Sequence[str]) -> list[str]:
    """Non-finite or negative values among ``columns`` of ``table`` (rows named by ``keys``)."""
    values = table[list(columns)].to_numpy(dtype=float)
    problems = []
    if not np.isfinite(values).all():
        problems.append(f"non-finite value(s): {_first(table, columns, ~np.isfinite(values), keys)}")
    if (values < 0).any():
        problems.append(f"negative value(s): {_first(table, columns, values < 0, keys)}")
    return problems


def refuse(what: str, problems: list[str], hint: str = "") -> None:
    """Raise :class:`GateError` listing ``problems`` of ``what``, if there are any."""
    if problems:
        tail = f"; {hint}" if hint else ""
        raise GateError(
            f"{what} failed the registration gate: {'; '.join(problems)}; nothing was registered{tail}"
        )


def _first(
    frame: pd.DataFrame, columns: Sequence[str], mask: np.ndarray, keys: Sequence[str] = ("unique_id", "ds")
) -> str:
    row, col = np.argwhere(mask)[0]
    count = int(mask.sum())
    where = _where(frame.iloc[int(row)], keys)
    return f"{count} value(s), first {where}, {columns[int(col)]} = {frame.iloc[int(row)][columns[int(col)]]}"


def _where(row: pd.Series, keys: Sequence[str] = ("unique_id", "ds")) -> str:
    parts = []
    for key in keys:
        if key in row.index:
            value = row[key]
            parts.append(f"{value:%Y-%m-%d}" if isinstance(value, pd.Timestamp) else f"{key} {value}")
    return ", ".join(parts)
