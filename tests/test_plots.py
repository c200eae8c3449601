"""Forecast plots name model and data and show the served horizon and the backtest; the GLM's
components recover the effects a series was made with."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from forecasting.calendar import is_bank_holiday
from forecasting.models import CalendarGLM, Ensemble, SeasonalNaive
from forecasting.plots import busiest_series, components_figure, find_glm, forecast_figure, glm_components


@pytest.fixture(scope="module")
def made():
    """Two series with known effects: Saturdays +20 %, bank holidays +30 %, +5 % a year."""
    rng = np.random.default_rng(7)
    ds = pd.date_range("2021-01-01", "2023-12-31", freq="D")
    years = (ds - ds[0]).days / 365.25
    rate = 200 * np.where(ds.day_of_week == 5, 1.2, 1.0) * np.where(is_bank_holiday(ds), 1.3, 1.0)
    rate = rate * 1.05**years
    frames = [
        pd.DataFrame({"unique_id": uid, "ds": ds, "y": rng.poisson(rate * scale).astype(float)})
        for uid, scale in (("small", 0.25), ("big", 1.0))
    ]
    data = pd.concat(frames, ignore_index=True)
    return data, CalendarGLM(annual_order=2).fit(data)


def test_components_recover_the_effects_the_series_was_made_with(made):
    _, model = made
    parts = glm_components(model, "big")
    weekly = parts["weekly"].set_index("day")["factor"]
    assert weekly["Sat"] == pytest.approx(1.2, abs=0.03)
    assert weekly[["Tue", "Wed", "Thu"]].to_numpy() == pytest.approx(1.0, abs=0.03)
    holiday = parts["holidays"].set_index("day")["factor"]
    assert holiday["bank holiday"] == pytest.approx(1.3, abs=0.1)
    trend = parts["trend"]["calls"].to_numpy()
    assert trend[-1] / trend[-366] == pytest.approx(1.05, abs=0.02)
    assert parts["annual"]["factor"].between(0.95, 1.05).all()  # no yearly cycle was put in
    figure = components_figure(model, "big")
    assert [ax.get_title(loc="left").split(":")[0].split(" (")[0] for ax in figure.axes] == [
        "Trend", "Weekly", "Yearly cycle", "Holidays"
    ]  # fmt: skip
    plt.close(figure)


def test_the_forecast_plot_names_its_model_covers_the_horizon_and_shows_the_backtest(made):
    data, model = made
    forecast = model.predict(84, level=[80, 95])
    backtest = model.predict(14, level=[80, 95]).assign(cutoff=data["ds"].max(), y=200.0)
    assert busiest_series(data, 1) == ["big"]
    figure = forecast_figure(data, forecast, ["big"], [80, 95], 60, "glm on made-up data", backtest)
    titles = [ax.get_title(loc="left") for ax in figure.axes]
    assert titles[0] == "All 2 series added up" and titles[1] == "big" and titles[2].startswith("Backtest")
    assert "glm on made-up data" in figure.texts[0].get_text()
    assert "84-day forecast; 1 of 2 series drawn" in figure.texts[0].get_text()
    last_drawn = max(line.get_xdata()[-1] for line in figure.axes[1].get_lines())
    assert pd.Timestamp(last_drawn) == forecast["ds"].max()  # the whole served horizon
    plt.close(figure)
    single = forecast_figure(data, forecast, ["big"], [80], 60, backtest=backtest, add_up=False)
    assert [ax.get_title(loc="left").split(":")[0] for ax in single.axes] == ["big", "Backtest, big"]
    plt.close(single)


def test_the_glm_is_found_inside_an_ensemble(made):
    data, model = made
    ensemble = Ensemble([SeasonalNaive(), CalendarGLM(annual_order=1)]).fit(data)
    assert isinstance(find_glm(ensemble), CalendarGLM) and find_glm(model) is model
    assert find_glm(SeasonalNaive().fit(data)) is None
