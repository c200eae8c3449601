"""The peer libraries are scored on exactly our backtest origins and layout (needs the bench extra)."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.backtest import rolling_origin_backtest
from forecasting.models import SeasonalNaive

PROTOCOL = dict(horizon=14, n_origins=2, step=7, level=[80, 95])


@pytest.mark.parametrize(
    "peer, library",
    [
        ("AutoETS", "statsforecast"),
        # Its order search with the 17 calendar regressors takes minutes on a loaded machine.
        pytest.param("AutoARIMA", "statsforecast", marks=pytest.mark.slow),
        ("Prophet", "prophet"),
        ("MLForecast", "mlforecast"),
    ],
    ids=["statsforecast", "statsforecast-exogenous", "prophet", "mlforecast"],
)
def test_peer_backtest_matches_our_origins_rows_and_scale(small_counts, peer, library):
    pytest.importorskip(library)
    from experiments.peers import peer_backtest

    data = small_counts[small_counts["unique_id"].isin(["city/C2", "moor/C1"])]
    ours = rolling_origin_backtest(SeasonalNaive(), data, **PROTOCOL)
    theirs = peer_backtest(peer, data, n_jobs=1, **PROTOCOL)

    keys = ["unique_id", "cutoff", "ds", "h"]
    assert (
        theirs[keys]
        .sort_values(keys)
        .reset_index(drop=True)
        .equals(ours[keys].sort_values(keys).reset_index(drop=True))
    )
    merged = theirs.merge(ours, on=keys, suffixes=("", "_ours"))
    pd.testing.assert_series_equal(merged["y"], merged["y_ours"], check_names=False)
    pd.testing.assert_series_equal(merged["scale"], merged["scale_ours"], check_names=False)
    assert (theirs["lo_95"] <= theirs["lo_80"]).all() and (theirs["lo_80"] <= theirs["mean"]).all()
    assert (theirs["mean"] <= theirs["hi_80"]).all() and (theirs["hi_80"] <= theirs["hi_95"]).all()
    # A sensible forecast of a few hundred calls a day is within 25 % on average.
    assert ((theirs["mean"] - theirs["y"]).abs() / theirs["y"]).mean() < 0.25


def test_unknown_peer_is_refused(small_counts):
    from experiments.peers import peer_backtest

    with pytest.raises(ValueError, match="unknown peer 'NeuralProphet'"):
        peer_backtest("NeuralProphet", small_counts, **PROTOCOL)


def test_peers_get_englands_bank_holidays_and_the_festive_days():
    from experiments.peers import calendar_regressors, prophet_holidays

    days = pd.Series(pd.date_range("2019-01-01", "2019-12-31", freq="D"))
    columns = calendar_regressors(days, fourier=True).set_index(days)
    # England's eight, Easter Monday and the late-August holiday included (holidays.UK() has six).
    assert columns["bank_holiday"].sum() == 8
    assert columns.loc["2019-04-22", "bank_holiday"] == 1 and columns.loc["2019-08-26", "bank_holiday"] == 1
    assert columns.loc["2019-12-31", "festive_12_31"] == 1 and columns["festive_12_31"].sum() == 1
    assert {"annual_sin1", "annual_cos3"} <= set(columns)
    assert not {"annual_sin1"} & set(calendar_regressors(days, fourier=False))
    frame = prophet_holidays([2019])
    assert {"Easter Monday", "Late Summer Bank Holiday", "festive 01-01"} <= set(frame["holiday"])
    assert len(frame) == 8 + 10
