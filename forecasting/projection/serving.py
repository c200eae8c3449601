"""Answering (area, date, scenario) requests from the projected daily table, with every split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecasting.projection.scenario import Scenario
from forecasting.projection.splits import MEASURES, shares_by_year, split_part
from mlops.errors import UserInputError

REQUEST_COLUMNS = ("area", "date", "scenario")


class ProjectionRequestError(UserInputError, ValueError):
    """A request lacks columns, names an unknown area or scenario, or asks for a date out of range.

    Messages name columns, row positions and the model's own areas, scenarios and years, never a
    value the request sent: the HTTP server (``mlops.serve``) shows them to clients because of
    ``client_safe``.
    """

    client_safe = True


def _listed(values: Sequence[str], limit: int = 20) -> str:
    """The model's own values, the first ``limit`` of them (all are in the model's metadata)."""
    if len(values) <= limit:
        return str(list(values))
    return f"{list(values)[:limit]} and {len(values) - limit} more (all in the model's metadata)"


def _rows(positions: np.ndarray) -> str:
    """``rows 0, 3, 7`` (first five): positions in the request, never its values."""
    shown = ", ".join(str(int(p)) for p in positions[:5])
    return f"row{'s' if len(positions) > 1 else ''} {shown}{', ...' if len(positions) > 5 else ''}"


def output_columns(labels: Sequence[str]) -> list[str]:
    """``calls_mean, calls_p10, ..., needs_ambulance_no_change_p90``: every measure with every statistic."""
    return [f"{measure}_{stat}" for measure in MEASURES for stat in ("mean", *labels)]


def answer_requests(
    daily: pd.DataFrame,
    scenarios: Mapping[str, Scenario],
    base_year: int,
    labels: Sequence[str],
    requests: pd.DataFrame,
) -> pd.DataFrame:
    """Expected calls, quantiles and their splits by category and disposition for each requested row.

    Parameters
    ----------
    daily : DataFrame
        ``area, scenario, ds, mean, sd`` and the quantile ``labels`` for all calls (from the projection).
    scenarios : mapping of str to Scenario
        The projected scenarios, for their category and disposition shares.
    requests : DataFrame
        Columns ``area``, ``date`` (a day in the projection years) and ``scenario``.

    Returns
    -------
    DataFrame
        The request rows in their order, then :func:`output_columns`.
    """
    missing = [column for column in REQUEST_COLUMNS if column not in requests.columns]
    if missing:
        raise ProjectionRequestError(
            f"request lacks column(s) {missing}: send rows with `area`, `date` (a day) and `scenario`"
        )
    if requests.empty:
        raise ProjectionRequestError("request has no rows: send at least one (area, date, scenario)")
    asked = pd.DataFrame(
        {
            "area": requests["area"].astype(str).to_numpy(),
            "scenario": requests["scenario"].astype(str).to_numpy(),
        }
    )
    asked["date"] = pd.to_datetime(requests["date"], errors="coerce").dt.normalize().to_numpy()
    if asked["date"].isna().any():
        bad = np.flatnonzero(asked["date"].isna().to_numpy())
        raise ProjectionRequestError(
            f"`date` holds {len(bad)} value(s) that are not dates ({_rows(bad)}): "
            "send ISO dates, e.g. 2035-01-31"
        )
    areas = sorted(daily["area"].unique())
    for column, known, what in (
        ("area", areas, "projects areas"),
        ("scenario", sorted(scenarios), "has scenarios"),
    ):
        unknown = np.flatnonzero(~asked[column].isin(known).to_numpy() | requests[column].isna().to_numpy())
        if len(unknown):
            raise ProjectionRequestError(
                f"unknown {column}: `{column}` in {len(unknown)} row(s) ({_rows(unknown)}) is not one "
                f"of this model's; it {what} {_listed(known)}"
            )
    first, last = daily["ds"].min(), daily["ds"].max()
    outside = ((asked["date"] < first) | (asked["date"] > last)).to_numpy()
    if outside.any():
        bad = np.flatnonzero(outside)
        raise ProjectionRequestError(
            f"`date` out of range in {len(bad)} row(s) ({_rows(bad)}): this model projects "
            f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
        )
    rows = asked.merge(
        daily.rename(columns={"ds": "date"}),
        on=["area", "scenario", "date"],
        how="left",
        validate="many_to_one",
    )
    out = asked.copy()
    years = rows["date"].dt.year
    for name, scenario in scenarios.items():
        mask = (rows["scenario"] == name).to_numpy()
        if not mask.any():
            continue
        shares = shares_by_year(scenario, sorted(years[mask].unique()), base_year)
        for measure in MEASURES:
            share = shares[measure].reindex(years[mask]).to_numpy()
            part = split_part(
                rows.loc[mask, "mean"].to_numpy(),
                rows.loc[mask, "sd"].to_numpy(),
                {q: rows.loc[mask, q].to_numpy() for q in labels},
                share,
            )
            for stat in ("mean", *labels):
                out.loc[mask, f"{measure}_{stat}"] = part[stat]
    return out[[*REQUEST_COLUMNS, *output_columns(labels)]]
