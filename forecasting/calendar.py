"""Calendar facts that drive ambulance demand: weekdays, seasons, UK bank holidays, Christmas/New Year."""

from __future__ import annotations

from functools import lru_cache

import holidays
import numpy as np
import pandas as pd

from mlops.errors import ConfigError

# Nations as the `holidays` package names their bank-holiday calendars.
UK_NATIONS = {"england": "ENG", "wales": "WLS", "scotland": "SCT", "northern_ireland": "NIR"}

# The festive fortnight is its own season: Christmas Day is quiet, Boxing Day and New Year's Day
# are exceptional peaks (DOMAIN.md: "New Year's Day is an exceptional peak").
FESTIVE_DAYS = (
    "12-24",
    "12-25",
    "12-26",
    "12-27",
    "12-28",
    "12-29",
    "12-30",
    "12-31",
    "01-01",
    "01-02",
)


def nation_code(nation: str) -> str:
    """Map a nation name (``england``, ``wales``, ``scotland``, ``northern_ireland``) to its code."""
    key = nation.lower()
    if key in UK_NATIONS:
        return UK_NATIONS[key]
    if nation.upper() in UK_NATIONS.values():
        return nation.upper()
    raise ConfigError(f"unknown nation {nation!r}: use one of {', '.join(UK_NATIONS)} for UK bank holidays")


@lru_cache(maxsize=64)
def _bank_holidays(code: str, first_year: int, last_year: int) -> frozenset[np.datetime64]:
    calendar = holidays.UK(subdiv=code, years=range(first_year, last_year + 1))
    return frozenset(np.datetime64(day, "D") for day in calendar)


def is_bank_holiday(ds: pd.Series | pd.DatetimeIndex, nation: str = "england") -> np.ndarray:
    """Boolean array: is each date a bank holiday in ``nation``."""
    dates = pd.DatetimeIndex(ds)
    if len(dates) == 0:
        return np.zeros(0, dtype=bool)
    days = _bank_holidays(nation_code(nation), dates.year.min(), dates.year.max())
    return np.isin(dates.values.astype("datetime64[D]"), np.array(sorted(days)))


def festive_day(ds: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Integer code for the festive fortnight: 1..10 for 24 Dec .. 2 Jan, 0 on other days."""
    dates = pd.DatetimeIndex(ds)
    labels = dates.strftime("%m-%d")
    lookup = {label: code for code, label in enumerate(FESTIVE_DAYS, start=1)}
    return np.array([lookup.get(label, 0) for label in labels], dtype=np.int8)


def fourier_terms(ds: pd.Series | pd.DatetimeIndex, period: float, order: int) -> np.ndarray:
    """Sine/cosine pairs of a smooth cycle of ``period`` days, shape (n, 2 * order).

    Time is counted from a fixed epoch so that terms agree between training and forecast frames.
    """
    days = pd.DatetimeIndex(ds).values.astype("datetime64[D]").astype(np.int64)
    angles = 2 * np.pi * np.outer(days, np.arange(1, order + 1)) / period
    return np.hstack([np.sin(angles), np.cos(angles)])


def calendar_features(
    ds: pd.Series | pd.DatetimeIndex, nation: str = "england", annual_order: int = 4
) -> pd.DataFrame:
    """Calendar features for demand models, one row per date.

    Columns: ``dow`` (0 = Monday), ``month``, ``day_of_year``, ``bank_holiday``, ``festive_day``
    and ``annual_sin_k`` / ``annual_cos_k`` Fourier terms of the year.
    """
    dates = pd.DatetimeIndex(ds)
    frame = pd.DataFrame(
        {
            "dow": dates.day_of_week.astype(np.int8),
            "month": dates.month.astype(np.int8),
            "day_of_year": dates.day_of_year.astype(np.int16),
            "bank_holiday": is_bank_holiday(dates, nation).astype(np.int8),
            "festive_day": festive_day(dates),
        }
    )
    if annual_order > 0:
        terms = fourier_terms(dates, 365.25, annual_order)
        for k in range(annual_order):
            frame[f"annual_sin_{k + 1}"] = terms[:, k]
            frame[f"annual_cos_{k + 1}"] = terms[:, annual_order + k]
    return frame


def calendar_design(
    ds: pd.Series | pd.DatetimeIndex, nation: str = "england", annual_order: int = 4
) -> pd.DataFrame:
    """Numeric regressors for linear models: weekday and festive-day dummies, bank holiday, Fourier.

    Monday and ordinary days are the reference levels, so the columns are not collinear with an
    intercept.
    """
    dates = pd.DatetimeIndex(ds)
    weekday = np.eye(7)[dates.day_of_week][:, 1:]
    festive = np.eye(len(FESTIVE_DAYS) + 1)[festive_day(dates)][:, 1:]
    columns = {f"dow_{k}": weekday[:, k - 1] for k in range(1, 7)}
    columns |= {f"festive_{label}": festive[:, i] for i, label in enumerate(FESTIVE_DAYS)}
    columns["bank_holiday"] = is_bank_holiday(dates, nation).astype(float)
    if annual_order > 0:
        terms = fourier_terms(dates, 365.25, annual_order)
        columns |= {f"annual_{k}": terms[:, k] for k in range(terms.shape[1])}
    return pd.DataFrame(columns)
