"""Hierarchies: summing matrix and node ids, reconciliation formulas, coherent forecasts and intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.hierarchy import (
    METHODS,
    HierarchicalForecaster,
    aggregate,
    build_hierarchy,
    metrics_by_level,
    projection,
    shrunk_covariance,
)
from forecasting.models import SeasonalNaive
from mlops.errors import DataValidationError


def keys(pairs):
    return pd.DataFrame([{"unique_id": f"{a}/{c}", "area": a, "category": c} for a, c in pairs])


def test_grouped_hierarchy_nodes_levels_and_summing_matrix():
    h = build_hierarchy(keys([("n", "C1"), ("n", "C2"), ("s", "C1"), ("s", "C2")]), ["area", "category"])
    assert h.nodes == (
        "total",
        "area=n",
        "area=s",
        "category=C1",
        "category=C2",
        "n/C1",
        "n/C2",
        "s/C1",
        "s/C2",
    )
    assert h.node_levels[:5] == ("total", "area", "area", "category", "category")
    assert h.leaf_level == "area/category" and h.leaves == ("n/C1", "n/C2", "s/C1", "s/C2")
    expected = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1], *np.eye(4)])
    np.testing.assert_array_equal(h.S, expected)
    assert h.nodes_by_level()["category"] == ["category=C1", "category=C2"]


def test_nested_and_single_column_hierarchies_have_no_repeated_nodes():
    # One column (areas -> trust): the areas' own totals would repeat the leaves.
    one = build_hierarchy(pd.DataFrame({"unique_id": ["a", "b", "c"], "area": ["a", "b", "c"]}), ["area"])
    assert one.nodes == ("total", "a", "b", "c")
    # Nested: every area in one region; an area total is a leaf, the only region's total is the total.
    nested = build_hierarchy(
        pd.DataFrame({"unique_id": ["r/a", "r/b"], "region": ["r", "r"], "area": ["a", "b"]}),
        ["region", "area"],
    )
    assert nested.nodes == ("total", "r/a", "r/b")
    assert len({tuple(row) for row in nested.S}) == nested.S.shape[0]


def test_ols_projection_is_the_closed_form():
    S = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    # (S'S)^-1 S' = 1/3 [[1, 2, -1], [1, -1, 2]]
    np.testing.assert_allclose(projection("ols", S), np.array([[1, 2, -1], [1, -1, 2]]) / 3)
    np.testing.assert_allclose(projection("bottom_up", S), [[0, 1, 0], [0, 0, 1]])
    # WLS structural weighs the total by 2 leaves: (S' W^-1 S)^-1 S' W^-1 with W = diag(2, 1, 1).
    W_inv = np.diag([0.5, 1.0, 1.0])
    expected = np.linalg.inv(S.T @ W_inv @ S) @ S.T @ W_inv
    np.testing.assert_allclose(projection("wls_struct", S), expected)


def test_mint_uses_the_shrunk_covariance_and_every_method_keeps_coherent_forecasts():
    rng = np.random.default_rng(0)
    leaves = rng.normal(size=(200, 2)) * [1.0, 3.0]
    S = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    errors = leaves @ S.T + rng.normal(scale=0.5, size=(200, 3))
    W, intensity = shrunk_covariance(errors)
    assert 0.0 <= intensity <= 1.0
    W_inv = np.linalg.inv(W)
    np.testing.assert_allclose(
        projection("mint_shrink", S, errors), np.linalg.inv(S.T @ W_inv @ S) @ S.T @ W_inv
    )
    for method in METHODS:
        P = projection(method, S, errors)
        np.testing.assert_allclose(P @ S, np.eye(2), atol=1e-10)  # coherent forecasts are left unchanged
        y = S @ (P @ np.array([10.0, 4.0, 7.0]))
        assert y[0] == pytest.approx(y[1] + y[2])


def test_shrinkage_intensity_matches_the_hts_formula_written_out():
    """lambda = sum_{i != j} Var(r_ij) / sum_{i != j} r_ij^2 with moments about zero, as hts's
    shrink.estim: Var(r_ij) = (sum_k w_kij^2 - (sum_k w_kij)^2 / n) / (n (n - 1)), w_kij = z_ki z_kj."""
    e = np.random.default_rng(2).normal(size=(12, 4)) + np.random.default_rng(3).normal(size=(12, 1))
    n, p = e.shape
    W1 = e.T @ e / n
    z = e / np.sqrt(np.diag(W1))
    var_r = corr_sq = 0.0
    for i in range(p):
        for j in range(p):
            if i != j:
                w = z[:, i] * z[:, j]
                var_r += (np.sum(w**2) - np.sum(w) ** 2 / n) / (n * (n - 1))
                corr_sq += (W1[i, j] / np.sqrt(W1[i, i] * W1[j, j])) ** 2
    W, intensity = shrunk_covariance(e)
    assert intensity == pytest.approx(var_r / corr_sq)
    np.testing.assert_allclose(W, intensity * np.diag(np.diag(W1)) + (1 - intensity) * W1)
    # Many observations of strongly related errors: little shrinkage; few of unrelated ones: much.
    x = np.random.default_rng(1).normal(size=(500, 1))
    assert shrunk_covariance(np.hstack([x, 2 * x + 0.1 * x**2]))[1] < 0.05
    assert shrunk_covariance(np.random.default_rng(4).normal(size=(8, 6)))[1] > 0.3


def toy_world(correlated: bool, days: int = 420, seed: int = 0) -> pd.DataFrame:
    """Four leaves (2 areas x 2 categories) with a weekly pattern and, optionally, a shared daily shock."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2022-01-01", periods=days, freq="D")
    weekly = 1 + 0.2 * np.sin(2 * np.pi * np.arange(days) / 7)
    shock = rng.normal(scale=6, size=days) if correlated else 0
    rows = []
    for area in ("n", "s"):
        for category in ("C1", "C2"):
            noise = rng.normal(scale=6 if not correlated else 1, size=days)
            y = np.maximum(np.round(50 * weekly + shock + noise), 0)
            rows.append(
                pd.DataFrame(
                    {"unique_id": f"{area}/{category}", "area": area, "category": category, "ds": ds, "y": y}
                )
            )
    return pd.concat(rows, ignore_index=True)


def fitted(
    frame: pd.DataFrame, method: str = "mint_shrink", intervals: str = "joint_errors"
) -> tuple[HierarchicalForecaster, pd.DataFrame]:
    nodes, hierarchy = aggregate(frame, ["area", "category"])
    model = HierarchicalForecaster(
        SeasonalNaive(), hierarchy, method=method, n_windows=6, step=14, horizon=14, intervals=intervals
    )
    return model.fit(nodes), nodes


@pytest.mark.parametrize("intervals", ["joint_errors", "copula", "calibrated_copula"])
def test_forecasts_are_coherent_with_ordered_intervals_for_every_node(intervals):
    model, nodes = fitted(toy_world(True), method="auto", intervals=intervals)
    assert model.method_ in METHODS and set(model.method_scores_) == set(METHODS)
    forecast = model.predict(14, [80, 95])
    wide = forecast.pivot(index="ds", columns="unique_id", values="mean")
    np.testing.assert_allclose(wide["total"], wide[["n/C1", "n/C2", "s/C1", "s/C2"]].sum(axis=1))
    np.testing.assert_allclose(wide["area=n"], wide[["n/C1", "n/C2"]].sum(axis=1))
    assert (forecast["lo_95"] <= forecast["lo_80"]).all() and (forecast["lo_80"] <= forecast["mean"]).all()
    assert (forecast["mean"] <= forecast["hi_80"]).all() and (forecast["hi_80"] <= forecast["hi_95"]).all()
    assert model.predict(3, [80], series=["total"])["unique_id"].unique().tolist() == ["total"]


@pytest.mark.parametrize("intervals", ["joint_errors", "copula"])
def test_a_totals_interval_follows_how_its_leaves_move_together(intervals):
    """Leaves with a shared shock give the total a wider interval than independent leaves of the
    same spread: the intervals keep the dependence instead of assuming independence."""

    def total_width(correlated: bool) -> float:
        forecast = fitted(toy_world(correlated), intervals=intervals)[0].predict(14, [80])
        total = forecast[forecast["unique_id"] == "total"]
        return float((total["hi_80"] - total["lo_80"]).mean())

    assert total_width(True) > 1.5 * total_width(False)


class NarrowNaive(SeasonalNaive):
    """Seasonal naive whose own intervals are ``shrink`` times as wide: a model whose intervals
    are wrong by a known factor."""

    def __init__(self, season_length: int = 7, shrink: float = 1.0):
        super().__init__(season_length)
        self.shrink = shrink

    def _predict(self, frame, h, level):
        out = super()._predict(frame, h, level)
        for lv in level:
            for side in ("lo", "hi"):
                out[f"{side}_{lv}"] = out["mean"] + self.shrink * (out[f"{side}_{lv}"] - out["mean"])
        return out


def test_calibrated_copula_corrects_a_model_whose_own_intervals_are_too_narrow():
    """The copula takes each node's spread from the model's own intervals, so intervals three times
    too narrow make it three times too narrow. The calibrated copula rescales each level of the
    hierarchy by the earlier origins' errors: its intervals do not depend on the model's own width
    (its factors absorb it exactly), and it no longer inherits the error."""
    frame = toy_world(True, days=420)
    cutoff = frame["ds"].max() - pd.Timedelta(days=14)
    nodes, hierarchy = aggregate(frame, ["area", "category"])
    train, test = nodes[nodes["ds"] <= cutoff], nodes[nodes["ds"] > cutoff]

    def coverage(shrink: float, intervals: str) -> tuple[float, pd.DataFrame]:
        model = HierarchicalForecaster(
            NarrowNaive(shrink=shrink),
            hierarchy,
            "mint_shrink",
            n_windows=6,
            step=14,
            horizon=14,
            intervals=intervals,
        ).fit(train)
        forecast = test.merge(model.predict(14, [80]), on=["unique_id", "ds"])
        inside = forecast["y"].between(forecast["lo_80"], forecast["hi_80"])
        return float(inside.mean()), model.calibration_factors([80, 95])

    honest, honest_factors = coverage(1.0, "calibrated_copula")
    narrow, narrow_factors = coverage(1 / 3, "calibrated_copula")
    assert narrow == pytest.approx(honest)  # the model's own width no longer matters
    np.testing.assert_allclose(narrow_factors.to_numpy(), 3 * honest_factors.to_numpy(), rtol=1e-6)
    assert list(narrow_factors.index) == ["total", "area", "category", "area/category"]
    assert coverage(1 / 3, "copula")[0] < narrow - 0.2  # the plain copula inherits the error


def test_calibrated_copula_needs_the_models_own_intervals_at_the_earlier_origins():
    model, _ = fitted(toy_world(True), intervals="joint_errors")
    with pytest.raises(ValueError, match="calibrated_copula"):
        model.reconciled_with("ols", "calibrated_copula").predict(7, [80])


def test_forecasts_use_no_day_after_the_data():
    frame = toy_world(True)
    cutoff = frame["ds"].max() - pd.Timedelta(days=30)
    train = frame[frame["ds"] <= cutoff]
    before = fitted(train, "auto")[0].predict(14, [80, 95])
    scrambled = frame.copy()
    later = scrambled["ds"] > cutoff
    scrambled.loc[later, "y"] = np.random.default_rng(3).permutation(scrambled.loc[later, "y"].to_numpy()) * 3
    after = fitted(scrambled[scrambled["ds"] <= cutoff], "auto")[0].predict(14, [80, 95])
    pd.testing.assert_frame_equal(before, after)


def test_aggregate_sums_every_node_and_refuses_ragged_leaves():
    frame = toy_world(False, days=30)
    nodes, hierarchy = aggregate(frame, ["area", "category"])
    day = nodes[nodes["ds"] == nodes["ds"].min()].set_index("unique_id")["y"]
    assert day["total"] == pytest.approx(frame[frame["ds"] == frame["ds"].min()]["y"].sum())
    assert day["category=C1"] == pytest.approx(day["n/C1"] + day["s/C1"])
    with pytest.raises(DataValidationError, match="every leaf of a hierarchy must cover the same days"):
        aggregate(frame.iloc[1:], ["area", "category"])
    with pytest.raises(DataValidationError, match="does not have"):
        aggregate(frame, ["region"])
    with pytest.raises(DataValidationError, match="regressors"):
        aggregate(frame.assign(x_temperature=1.0), ["area", "category"])


def test_metrics_by_level_reports_each_level_once():
    frame = toy_world(False, days=200)
    nodes, hierarchy = aggregate(frame, ["area", "category"])
    from forecasting.backtest import rolling_origin_backtest

    model = HierarchicalForecaster(SeasonalNaive(), hierarchy, n_windows=3, step=7, horizon=7)
    backtest = rolling_origin_backtest(model, nodes, 7, 2, 7, [80])
    table = metrics_by_level(backtest, hierarchy, [80])
    assert table["level"].tolist() == ["total", "area", "category", "area/category"]
    assert table["n_nodes"].tolist() == [1, 2, 2, 4]
    assert table["mase"].notna().all()
