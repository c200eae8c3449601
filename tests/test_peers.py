"""The peer libraries are scored on exactly our backtest origins and layout (needs the bench extra)."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.backtest import rolling_origin_backtest
from forecasting.models import SeasonalNaive

PROTOCOL = dict(horizon=14, n_origins=2, step=7, level=[80, 95])


@pytest.mark.parametrize(
    "peer, library", [("AutoETS", "statsforecast"), ("Prophet", "prophet")], ids=["statsforecast", "prophet"]
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
