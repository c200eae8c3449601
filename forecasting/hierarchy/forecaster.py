"""Coherent forecasts of every node of a hierarchy, with intervals that keep the dependence.

:class:`HierarchicalForecaster` wraps any model. It is fitted on every node's series (as made by
:func:`~forecasting.hierarchy.structure.aggregate`): the model forecasts each node (the base
forecasts), and the forecasts are reconciled so that every total is exactly the sum of its leaves
(:mod:`forecasting.hierarchy.reconcile`).

What reconciliation needs, it learns from the model's own errors: the model is refitted at
``n_windows`` earlier origins inside the training data (as :class:`~forecasting.models.BacktestConformal`
does) and its errors on the days that followed, one vector over all nodes per origin and day, give

- the error covariance that ``wls_var`` and ``mint_shrink`` weight by;
- the choice of method when ``method="auto"``: each method reconciles each earlier origin's
  forecasts with weights estimated from the *other* origins' errors, and the method with the lowest
  mean scaled error (MAE / the node's seasonal-naive scale, averaged within each level, then over
  levels so that the total counts as much as the leaves) wins. Only data before the fit's last day
  is used, so inside a backtest the choice never sees the test window;
- the dependence between the nodes' errors, for the intervals, in one of three ways:
  ``intervals="copula"`` (the default: on the development origins of
  experiments/results/hierarchy.md it covered closer to nominal than joint errors, and neither it
  nor the calibrated copula below was closer on both hierarchies) is a Gaussian copula: each node's
  base error is normal with the spread of the model's own interval that day, correlated as the
  nodes' Pearson residuals (error / sqrt(mean)) at the earlier origins, shrunk as for MinT; the
  reconciled error of node i is then normal with variance ``(A Sigma A')_ii``, ``A = S P``.
  ``intervals="joint_errors"`` resamples nothing but uses the joint error vectors themselves: those
  at horizons within +-3 days of ``h`` (one per earlier origin and day, all nodes together) are
  rescaled to today's level (as Pearson residuals) and reconciled like forecasts; the bounds are the
  split-conformal quantiles of these reconciled errors around the reconciled mean (reconciliation is
  linear, so this is the same as reconciling each sample path ``y_hat + e``).
  ``intervals="calibrated_copula"`` is the copula with each hierarchy level's spread rescaled, per
  nominal level, so that the reconciled errors of the earlier origins fall inside the copula's
  interval at the nominal rate there: the copula keeps the dependence and the shape over the
  horizon, the model's own errors correct its width where the model's own intervals are too wide or
  too narrow (or the errors heavier-tailed than normal) at a level of the hierarchy. Every way a
  total's interval reflects how its leaves' errors move together, not an assumption of independence.

Reconciled leaf means below zero (possible with sparse leaves) are set to zero and the totals
re-summed, so the output stays coherent and non-negative.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import clone

from forecasting.hierarchy.reconcile import METHODS, projection, shrunk_covariance
from forecasting.hierarchy.structure import Hierarchy
from forecasting.models.base import Forecaster
from mlops.errors import ConfigError

HORIZON_BAND = 3  # days either side of h whose error vectors also calibrate h
CHOICES = (*METHODS, "auto")
INTERVALS = ("joint_errors", "copula", "calibrated_copula")
COPULAS = ("copula", "calibrated_copula")  # the kinds that need the model's own intervals
COPULA_LEVELS = [80, 95]  # the model's own intervals that give each node's spread for the copula


class HierarchicalForecaster(Forecaster):
    """Base forecasts of every node by ``model``, reconciled by ``method``.

    Parameters
    ----------
    model : Forecaster
        Forecasts every node (leaves and totals alike).
    hierarchy : Hierarchy
        The nodes and summing matrix; ``fit`` takes a frame with exactly these nodes.
    method : str
        ``bottom_up``, ``ols``, ``wls_struct``, ``wls_var``, ``mint_shrink`` or ``auto``.
    n_windows, step, horizon : int
        Earlier origins refitted for the errors (each costs one fit of ``model``), days between
        them, and the longest horizon calibrated (later days reuse its errors).
    intervals : str
        ``joint_errors``: each node's bounds are quantiles of the reconciled joint error vectors
        (above). ``copula``: a Gaussian copula; each node's base error is normal with the spread of
        the model's own interval that day, the errors correlate as the Pearson residuals at the
        earlier origins (shrunk as for MinT), and the reconciled error of each node is normal with
        the variance this implies (``A Sigma A'``, ``A = S P``). ``calibrated_copula``: the
        copula, its standard deviations at each level of the hierarchy multiplied, per nominal
        level, by the factor that makes the earlier origins' reconciled errors cover at nominal.
    """

    def __init__(
        self,
        model: Forecaster,
        hierarchy: Hierarchy,
        method: str = "mint_shrink",
        n_windows: int = 8,
        step: int = 14,
        horizon: int = 84,
        intervals: str = "copula",
    ):
        self.model = model
        self.hierarchy = hierarchy
        self.method = method
        self.n_windows = n_windows
        self.step = step
        self.horizon = horizon
        self.intervals = intervals

    @property
    def node_naming(self) -> str:
        """How the nodes are named, for a request that asks for an unknown one."""
        return self.hierarchy.describe()

    def min_history_days(self) -> int:
        from forecasting.backtest import MIN_TRAIN_DAYS

        first = max(MIN_TRAIN_DAYS, self.model.min_history_days())
        return first + int(self.horizon) + int(self.step) * (int(self.n_windows) - 1)

    def fit(self, df: pd.DataFrame) -> HierarchicalForecaster:
        if self.method not in CHOICES:
            raise ConfigError(f"hierarchy.method={self.method!r}: choose one of {list(CHOICES)}")
        if self.intervals not in INTERVALS:
            raise ConfigError(f"hierarchy.intervals={self.intervals!r}: choose one of {list(INTERVALS)}")
        if int(self.n_windows) < 2 or int(self.step) < 1 or int(self.horizon) < 1:
            raise ValueError("n_windows must be at least 2, step and horizon at least 1")
        nodes = list(self.hierarchy.nodes)
        got = set(df["unique_id"].unique())
        if got != set(nodes):
            odd = sorted(got.symmetric_difference(nodes))
            raise ValueError(f"the data's series are not the hierarchy's nodes (differ in {odd[:5]})")
        self._remember_history(df)
        folds = self._earlier_origin_forecasts(df)
        errors = _joint(folds, "y", nodes) - _joint(folds, "mean", nodes)  # (origin, h) x node
        flat = errors.to_numpy()
        self.method_scores_ = self._method_scores(folds, errors) if self.method == "auto" else {}
        scores = self.method_scores_
        self.method_ = min(scores, key=scores.get) if scores else self.method
        self.errors_ = flat  # kept so that another method can be applied without refitting
        # Each node's spread by the model's own intervals at the earlier origins (copulas only): the
        # calibrated copula compares the reconciled errors there with the copula's spread.
        self.earlier_sd_ = _own_sd(folds, nodes).to_numpy() if self.intervals in COPULAS else None
        self.projection_ = projection(self.method_, self.hierarchy.S, flat)
        # Pearson residuals keep each node's error on a scale that follows its level.
        base = _joint(folds, "mean", nodes).to_numpy()
        pearson = flat / np.sqrt(np.maximum(base, 1.0))
        h_of_row = errors.index.get_level_values("h").to_numpy()
        self.pearson_by_h_ = {
            h: pearson[np.abs(h_of_row - h) <= HORIZON_BAND] for h in range(1, int(self.horizon) + 1)
        }
        shrunk, _ = shrunk_covariance(pearson)
        sd = np.sqrt(np.maximum(np.diag(shrunk), 1e-12))
        self.correlation_ = shrunk / np.outer(sd, sd)
        self.model_ = clone(self.model).fit(df)
        self.base_forecasts_ = {}
        return self

    def __getstate__(self):
        # Base forecasts cached for the comparisons of a benchmark are not part of the model.
        state = super().__getstate__()
        return {**state, "base_forecasts_": {}} if "base_forecasts_" in state else state

    def reconciled_with(self, method: str, intervals: str | None = None) -> HierarchicalForecaster:
        """This fitted model reconciling by ``method`` (and making ``intervals``) instead, with the
        same base forecasts and errors, e.g. to compare methods in a benchmark without refitting."""
        if method not in METHODS:
            raise ValueError(f"unknown reconciliation method {method!r}; choose from {list(METHODS)}")
        other = copy.copy(self)
        other.intervals = intervals or self.intervals
        other.method_ = method
        other.projection_ = projection(method, self.hierarchy.S, self.errors_)
        return other

    def _earlier_origin_forecasts(self, df: pd.DataFrame) -> pd.DataFrame:
        from forecasting.backtest import rolling_origin_backtest  # it imports the models package

        try:
            return rolling_origin_backtest(
                self.model,
                df,
                int(self.horizon),
                int(self.n_windows),
                int(self.step),
                level=COPULA_LEVELS if self.intervals in COPULAS else [],
                progress=False,
                setting_names={
                    "horizon": "hierarchy.horizon",
                    "n_origins": "hierarchy.n_windows",
                    "step": "hierarchy.step",
                },
            )
        except ConfigError as error:
            raise ValueError(f"too little history before the hierarchy's earliest origin: {error}") from None

    def _method_scores(self, folds: pd.DataFrame, errors: pd.DataFrame) -> dict[str, float]:
        """Mean scaled error of each method on the earlier origins, each reconciled without its own errors."""
        nodes = list(self.hierarchy.nodes)
        actual = _joint(folds, "y", nodes)
        base = _joint(folds, "mean", nodes)
        scale = folds.groupby(["cutoff", "unique_id"])["scale"].first().unstack()[nodes]
        levels = np.array(self.hierarchy.node_levels)
        cutoffs = errors.index.get_level_values("cutoff")
        scores = {}
        for method in METHODS:
            scaled = []
            for cutoff in cutoffs.unique():
                mine = np.asarray(cutoffs == cutoff)
                P = projection(method, self.hierarchy.S, errors.to_numpy()[~mine])
                coherent = base.to_numpy()[mine] @ (self.hierarchy.S @ P).T
                denominator = scale.loc[cutoff].to_numpy()
                scaled.append(np.abs(actual.to_numpy()[mine] - coherent) / denominator)
            by_node = np.vstack(scaled).mean(axis=0)
            scores[method] = float(np.mean([by_node[levels == lv].mean() for lv in dict.fromkeys(levels)]))
        return scores

    def _predict(self, frame: pd.DataFrame, h: int, level: list[int]) -> pd.DataFrame:
        nodes = list(self.hierarchy.nodes)
        copula = bool(level) and self.intervals in COPULAS
        # Every node: reconciliation needs them all (with the model's own bounds for the copula).
        base_levels = COPULA_LEVELS if copula else []
        key = (int(h), tuple(base_levels))
        if key not in self.base_forecasts_:  # shared with reconciled_with() copies: one prediction
            self.base_forecasts_[key] = self.model_.predict(h, base_levels)
        base = self.base_forecasts_[key]
        wide = base.pivot(index="ds", columns="unique_id", values="mean")[nodes]
        S, P = self.hierarchy.S, self.projection_
        leaves = np.maximum(wide.to_numpy() @ P.T, 0.0)  # (day, leaf)
        coherent = leaves @ S.T
        out = {"mean": coherent}
        if copula:
            out |= self._copula_bounds(base, wide, coherent, level)
        elif level:
            root = np.sqrt(np.maximum(wide.to_numpy(), 1.0))
            bounds = {f"{side}_{lv}": np.empty_like(coherent) for lv in level for side in ("lo", "hi")}
            for day in range(len(wide)):
                vectors = self.pearson_by_h_[min(day + 1, int(self.horizon))] * root[day]
                reconciled = np.sort(vectors @ (S @ P).T, axis=0)  # (vector, node), each node sorted
                for lv in level:
                    tail = (1 - lv / 100) / 2
                    bounds[f"lo_{lv}"][day] = coherent[day] + _quantile_row(reconciled, tail)
                    bounds[f"hi_{lv}"][day] = coherent[day] + _quantile_row(reconciled, 1 - tail)
            # Errors of one sign only (a biased model) would leave the mean outside its own interval:
            # intervals always hold the mean, and counts are never below zero.
            for lv in level:
                out[f"lo_{lv}"] = np.clip(bounds[f"lo_{lv}"], 0.0, coherent)
                out[f"hi_{lv}"] = np.maximum(bounds[f"hi_{lv}"], coherent)
        long = pd.concat(
            {
                name: pd.DataFrame(values, index=wide.index, columns=nodes).stack()
                for name, values in out.items()
            },
            axis=1,
        )
        long = long.rename_axis(["ds", "unique_id"]).reset_index()
        return frame[["unique_id", "ds"]].merge(long, on=["unique_id", "ds"], how="left")

    def _copula_bounds(
        self, base: pd.DataFrame, wide: pd.DataFrame, coherent: np.ndarray, level: list[int]
    ) -> dict[str, np.ndarray]:
        """Normal bounds from the copula: base spreads from the model's own intervals."""
        nodes = list(self.hierarchy.nodes)
        sd = _own_sd(base, nodes, index="ds").to_numpy()
        A = self.hierarchy.S @ self.projection_
        reconciled_sd = _reconciled_sd(A, self.correlation_, sd)
        factors = self._calibration(A, level) if self.intervals == "calibrated_copula" else {}
        out = {}
        for lv in level:
            z = norm.ppf(0.5 + lv / 200) * factors.get(lv, 1.0)
            out[f"lo_{lv}"] = np.clip(coherent - z * reconciled_sd, 0.0, coherent)
            out[f"hi_{lv}"] = coherent + z * reconciled_sd
        return out

    def calibration_factors(self, level: list[int]) -> pd.DataFrame:
        """The calibrated copula's factor on its spread, one row per level of the hierarchy and one
        column per nominal level (1 = the copula as it is, above 1 = wider)."""
        A = self.hierarchy.S @ self.projection_
        factors = self._calibration(A, level)
        levels = np.array(self.hierarchy.node_levels)
        first = {name: int(np.flatnonzero(levels == name)[0]) for name in dict.fromkeys(levels)}
        return pd.DataFrame({lv: {name: f[i] for name, i in first.items()} for lv, f in factors.items()})

    def _calibration(self, A: np.ndarray, level: list[int]) -> dict[int, np.ndarray]:
        """Per nominal level, each node's factor: the split-conformal quantile of the earlier
        origins' |reconciled error| / copula spread over the nodes of its hierarchy level, divided
        by the normal quantile the copula uses. Every earlier origin and day counts once per node."""
        if self.earlier_sd_ is None:
            raise ValueError(
                "intervals='calibrated_copula' needs the model's own intervals at the earlier origins: "
                "fit with intervals='copula' or 'calibrated_copula'"
            )
        ratio = np.abs(self.errors_ @ A.T) / _reconciled_sd(A, self.correlation_, self.earlier_sd_)
        levels = np.array(self.hierarchy.node_levels)
        factors = {}
        for lv in level:
            out = np.ones(len(levels))
            for name in dict.fromkeys(levels):
                values = ratio[:, levels == name].ravel()
                values = np.sort(values[np.isfinite(values)])
                if len(values):
                    out[levels == name] = _quantile_row(values[:, None], lv / 100)[0] / norm.ppf(
                        0.5 + lv / 200
                    )
            factors[lv] = out
        return factors


def _own_sd(frame: pd.DataFrame, nodes: list[str], index: str | list[str] = ("cutoff", "h")) -> pd.DataFrame:
    """Each node's standard deviation implied by the model's own 80 and 95 % intervals (each
    interval's half-width in standard normal units, averaged), one row per ``index`` value."""
    index = [index] if isinstance(index, str) else list(index)
    spreads = []
    for lv in COPULA_LEVELS:
        hi = frame.pivot_table(index=index, columns="unique_id", values=f"hi_{lv}")[nodes]
        lo = frame.pivot_table(index=index, columns="unique_id", values=f"lo_{lv}")[nodes]
        spreads.append((hi - lo) / (2 * norm.ppf(0.5 + lv / 200)))
    return np.maximum(sum(spreads) / len(spreads), 1e-9)


def _reconciled_sd(A: np.ndarray, correlation: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Per row of base spreads ``sd`` (row, node): each node's reconciled standard deviation,
    sqrt of the diagonal of ``A Sigma A'`` with ``Sigma = correlation * sd sd'``."""
    scaled = A[None, :, :] * sd[:, None, :]  # (row, node i, node j): A_ij sd_j
    variance = np.einsum("rij,jk,rik->ri", scaled, correlation, scaled)
    return np.sqrt(np.maximum(variance, 0.0))


def _quantile_row(sorted_columns: np.ndarray, q: float) -> np.ndarray:
    """Each column's split-conformal ``q`` quantile (as :func:`conformal_quantile`), columns sorted."""
    n = len(sorted_columns)
    rank = min(int(np.ceil((n + 1) * q)), n) if q >= 0.5 else max(int(np.floor((n + 1) * q)), 1)
    return sorted_columns[rank - 1]


def _joint(folds: pd.DataFrame, column: str, nodes: list[str]) -> pd.DataFrame:
    """One row per (origin, h), one column per node."""
    return folds.pivot_table(index=["cutoff", "h"], columns="unique_id", values=column)[nodes]
