"""Automatic model choice: rolling-origin cross-validation on the data ``fit`` is given.

``AutoForecaster.fit(df)`` backtests every candidate at a few inner origins inside ``df``, scores
combinations of the best of them from those same forecasts (no refits), picks the lowest MASE and
refits the winner on all of ``df``. Everything it learns comes from ``df``: inside an outer
backtest each outer origin gets its own choice, made only from inner origins whose test windows
ended by that origin (nested cross-validation, no look-ahead).

Cost. Inner origins lie on a fixed calendar grid (every ``step`` days from ``GRID_EPOCH``), so
neighbouring outer origins share them; a candidate's forecast at an inner origin depends only on
the data up to that origin (and the regressors of its test window), and is memoised under a hash
of exactly those rows and the candidate's parameters. An outer backtest therefore fits each
candidate once per grid origin rather than once per outer origin and inner origin; the result is
the same as without the memo, which only saves time. The memo keeps forecast frames, not fitted
models. A backtest thus costs (distinct grid origins) x (all candidates) + (outer origins) x (the
winner): SWAST 2019's 41 weekly origins use 7 grid origins, so the winner's 41 refits dominate,
and the demo's 6 origins 3 (4 with the final fit). Choosing less often would save little; what
pays is cheap candidates (one BLAS / OpenMP thread per small fit, ETS started from its first
seasons, no parameter covariance in the ARIMA fit: see their docstrings).

Short histories. A candidate takes part in a choice only when every series has the days it needs
(its own ``min_history_days``, at least ``MIN_TRAIN_DAYS`` and a season) up to the oldest inner
origin; the others are left out of that choice, and of its combinations, with the reason in the
scores table (``left_out``) and in ``left_out_``. This depends only on the data ``fit`` is given,
so inside a backtest the early origins may choose among fewer candidates than the late ones (e.g.
LightGBM, which needs ``2 x calibration_days + 28`` days, joins once the history allows).
``min_history_days`` is therefore what the least demanding candidate needs plus the inner origins
(``horizon + n_origins x step``); auto keeps the configured ``n_origins`` and ``horizon`` (the
served horizon) on any history, so every contender is scored on the same inner origins (a candidate
that could run at the newest ones only is left out, not compared on fewer windows), and refuses
with one message only when no candidate fits. A history on which every candidate fits is chosen
from exactly as before this rule (which then refused any shorter one).

Intervals. The winner's inner forecasts also give its out-of-sample interval coverage. When that
misses a nominal level by more than ``coverage_tolerance`` (``recalibrate="auto"``), or always
(``"always"``), the winner's intervals are recalibrated horizon by horizon on its inner errors (as
:class:`BacktestConformal` does, with no extra fits); otherwise the winner keeps its own
intervals. The forecasting job sets these from its ``intervals`` config, the one recalibration
setting of every model (:func:`~forecasting.models.conformal.with_interval_settings`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from forecasting.metrics import seasonal_naive_scale
from forecasting.models.base import Forecaster, interval_columns
from forecasting.models.conformal import (
    HORIZON_BAND,
    RECALIBRATE,
    check_scale,
    conformal_bounds,
    interval_coverage,
    residuals_by_horizon,
)
from forecasting.models.ensemble import Ensemble

GRID_EPOCH = pd.Timestamp("2000-01-02")  # inner origins are this date plus whole multiples of step
COMBINATIONS = ("equal", "inverse_error")
_MEMO_SIZE = 512  # inner forecasts kept (each a few thousand rows at most)
_MEMO: OrderedDict[str, pd.DataFrame] = OrderedDict()


def _min_train_days() -> int:
    # Imported here: forecasting.backtest itself imports the models package.
    from forecasting.backtest import MIN_TRAIN_DAYS

    return MIN_TRAIN_DAYS


def clear_memo() -> None:
    """Forget memoised inner forecasts (tests use it to prove a result does not depend on them)."""
    _MEMO.clear()


def inner_cutoffs(last_date: pd.Timestamp, horizon: int, n_origins: int, step: int) -> list[pd.Timestamp]:
    """The ``n_origins`` newest grid dates whose ``horizon``-day test window ends by ``last_date``."""
    newest_allowed = pd.Timestamp(last_date) - pd.Timedelta(days=int(horizon))
    offset = (newest_allowed - GRID_EPOCH).days % int(step)
    newest = newest_allowed - pd.Timedelta(days=offset)
    return [newest - pd.Timedelta(days=int(step) * k) for k in reversed(range(int(n_origins)))]


class AutoForecaster(Forecaster):
    """Choose among ``candidates`` and their combinations by inner rolling-origin MASE.

    Parameters
    ----------
    candidates : mapping of str to Forecaster
        Named models to choose from (order breaks ties: earlier wins).
    combinations : sequence of {"equal", "inverse_error"}
        Combinations of the best single candidates to score as well: equal weights, or weights
        proportional to 1 / inner MASE. Both are scored on the inner forecasts already made.
    max_members : int
        Combinations use the best 2..max_members single candidates.
    n_origins, step, horizon : int
        Inner origins, days between them (the grid spacing), and days forecast from each.
    season_length : int
        Seasonal-naive period of the MASE scale.
    levels : sequence of int
        Interval levels whose inner coverage decides recalibration.
    coverage_tolerance : float
        Recalibrate the winner's intervals when inner coverage misses any of ``levels`` by more
        than this (a fraction, e.g. 0.025 = 2.5 points); a negative value always recalibrates.
    recalibrate : {"auto", "always", "never"} or bool
        ``auto`` (or True): recalibrate when inner coverage misses by more than
        ``coverage_tolerance``; ``always``; ``never`` (or False) keeps the winner's own intervals.
    recalibration_scale, recalibration_band : str, int
        The error scale and horizon pooling of the recalibration (see :class:`BacktestConformal`).
    """

    uses_regressors = True

    def __init__(
        self,
        candidates: Mapping[str, Forecaster],
        combinations: Sequence[str] = COMBINATIONS,
        max_members: int = 3,
        n_origins: int = 3,
        step: int = 28,
        horizon: int = 84,
        season_length: int = 7,
        levels: Sequence[int] = (80, 95),
        coverage_tolerance: float = 0.025,
        recalibrate: str | bool = "auto",
        recalibration_scale: str = "pearson",
        recalibration_band: int = HORIZON_BAND,
    ):
        self.candidates = candidates
        self.combinations = combinations
        self.max_members = max_members
        self.n_origins = n_origins
        self.step = step
        self.horizon = horizon
        self.season_length = season_length
        self.levels = levels
        self.coverage_tolerance = coverage_tolerance
        self.recalibrate = recalibrate
        self.recalibration_scale = recalibration_scale
        self.recalibration_band = recalibration_band

    def min_history_days(self) -> int:
        # What the least demanding candidate needs at the oldest inner origin: at each fit the
        # candidates the history cannot serve are left out of the choice (see ``_usable``), so
        # auto trains wherever its cheapest candidate can. The grid can put the newest inner
        # origin up to step - 1 days before the last possible one.
        first = min((self._needs(model) for model in self.candidates.values()), default=self._floor())
        return first + int(self.horizon) + int(self.step) * int(self.n_origins)

    def _floor(self) -> int:
        # Every candidate needs the backtest's minimum and more than a season (MASE's scale).
        return max(_min_train_days(), int(self.season_length) + 1)

    def _needs(self, model: Forecaster) -> int:
        """Days every series needs up to the oldest inner origin for ``model`` to take part."""
        return max(self._floor(), int(model.min_history_days()))

    def _check_settings(self) -> None:
        if not self.candidates:
            raise ValueError("auto needs at least one candidate model")
        for name in ("n_origins", "step", "horizon", "season_length"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if unknown := sorted(set(self.combinations) - set(COMBINATIONS)):
            raise ValueError(f"unknown combinations {unknown}: use some of {list(COMBINATIONS)}")
        self._recalibration_mode()
        check_scale(self.recalibration_scale, self.recalibration_band)

    def _recalibration_mode(self) -> str:
        mode = {True: "auto", False: "never"}.get(self.recalibrate, self.recalibrate)
        if mode not in RECALIBRATE:
            raise ValueError(f"recalibrate must be one of {list(RECALIBRATE)}, got {self.recalibrate!r}")
        return mode

    def select(self, df: pd.DataFrame) -> pd.DataFrame:
        """Score every candidate and combination on inner origins inside ``df``, best first.

        Returns one row per contender: ``name``, ``members``, ``weights``, ``mase``, ``mae``,
        ``coverage_L`` per level, ``origins`` (the inner origins, ISO dates), ``rank`` and
        ``left_out`` (empty), then one unscored row per candidate the history could not serve
        (no scores, no rank, ``left_out`` says why).
        """
        return self._select(df)[0]

    def _select(self, df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
        self._check_settings()
        cutoffs = inner_cutoffs(df["ds"].max(), self.horizon, self.n_origins, self.step)
        usable, left_out = self._usable(df, cutoffs)
        forecasts = {name: self._inner_forecasts(m, df, cutoffs) for name, m in usable.items()}
        contenders = {name: ([name], [1.0]) for name in forecasts}
        single = _scores(forecasts, self._levels())
        ranked = single.sort_values("mase", kind="stable")["name"].tolist()
        for size in range(2, min(int(self.max_members), len(ranked)) + 1):
            best = ranked[:size]
            for kind in self.combinations:
                if kind == "equal":
                    weights = [1.0 / size] * size
                else:
                    inverse = 1.0 / single.set_index("name").loc[best, "mase"].to_numpy()
                    weights = list(inverse / inverse.sum())
                name = f"{kind}({'+'.join(best)})"
                contenders[name] = (best, [float(w) for w in weights])
                forecasts[name] = _combine([forecasts[m] for m in best], weights, self._levels())
        table = _scores(forecasts, self._levels())
        table.insert(1, "members", ["+".join(contenders[n][0]) for n in table["name"]])
        table.insert(2, "weights", [",".join(f"{w:.3f}" for w in contenders[n][1]) for n in table["name"]])
        table["origins"] = ",".join(f"{c:%Y-%m-%d}" for c in cutoffs)
        table = table.sort_values("mase", kind="stable", ignore_index=True)
        table["rank"] = pd.array(np.arange(1, len(table) + 1), dtype="Int64")
        table["left_out"] = ""
        # Candidates the history could not serve: listed unscored (no rank), with the reason.
        dropped = pd.DataFrame(
            {
                "name": list(left_out),
                "members": list(left_out),
                "weights": "1.000",
                "origins": table["origins"].iloc[0],
                "rank": pd.array([pd.NA] * len(left_out), dtype="Int64"),
                "left_out": list(left_out.values()),
            }
        )
        if not dropped.empty:
            table = pd.concat([table, dropped], ignore_index=True)
        return table, forecasts

    def fit(self, df: pd.DataFrame) -> AutoForecaster:
        self._remember_history(df)
        scores, forecasts = self._select(df)
        winner = scores.iloc[0]
        members = str(winner["members"]).split("+")
        weights = [float(w) for w in str(winner["weights"]).split(",")]
        if len(members) == 1:
            model = clone(self.candidates[members[0]])
        else:
            model = Ensemble([clone(self.candidates[m]) for m in members], weights=weights)
        inner = forecasts[winner["name"]]
        misses = max(abs(winner[f"coverage_{lv}"] - lv / 100) for lv in self._levels())
        mode = self._recalibration_mode()
        # None: not checked (``never``), as BacktestConformal says it (conformal.recalibration_state).
        missed = misses > float(self.coverage_tolerance)
        self.recalibrated_ = None if mode == "never" else mode == "always" or missed
        scale, band = self.recalibration_scale, int(self.recalibration_band)
        self.residuals_by_h_ = (
            residuals_by_horizon(inner, int(self.horizon), scale, band) if self.recalibrated_ else None
        )
        self.winner_ = str(winner["name"])
        self.scores_ = scores
        # Why each candidate the history could not serve took no part ({} when all did).
        self.left_out_ = dict(zip(scores["name"], scores["left_out"], strict=True))
        self.left_out_ = {name: why for name, why in self.left_out_.items() if why}
        self.model_ = model.fit(df)
        self.regressors_ = self.model_.fitted_regressors
        return self

    def _predict(self, frame: pd.DataFrame, h: int, level: list[int]) -> pd.DataFrame:
        check_is_fitted(self, "model_")
        series = frame["unique_id"].unique().tolist()
        forecast = self.model_.predict(h, level, future=frame, series=series)
        if self.recalibrated_:
            forecast = conformal_bounds(
                forecast, self.last_dates_, self.residuals_by_h_, level, self.recalibration_scale
            )
        return forecast

    def _levels(self) -> list[int]:
        return sorted({int(lv) for lv in self.levels})

    def _usable(
        self, df: pd.DataFrame, cutoffs: list[pd.Timestamp]
    ) -> tuple[dict[str, Forecaster], dict[str, str]]:
        """The candidates every series has enough days for up to the oldest inner origin, and why
        each other one is left out. Only ``df`` decides (in a backtest: the outer origin's past)."""
        available = df[df["ds"] <= cutoffs[0]].groupby("unique_id").size()
        available = available.reindex(df["unique_id"].unique(), fill_value=0)
        uid, has = available.idxmin(), int(available.min())
        usable, left_out = {}, {}
        for name, model in self.candidates.items():
            needed = self._needs(model)
            if has >= needed:
                usable[name] = model
            else:
                left_out[name] = (
                    f"{name} left out: needs {needed} days, the shortest series ({uid!r}) has {has} "
                    f"at the oldest inner origin {cutoffs[0]:%Y-%m-%d}"
                )
        if not usable:
            needed = min(self._needs(model) for model in self.candidates.values())
            raise ValueError(
                f"auto: series {uid!r} has {has} day(s) up to the oldest inner origin "
                f"{cutoffs[0]:%Y-%m-%d}; its least demanding candidate needs {needed} "
                f"(model.horizon={self.horizon}, model.n_origins={self.n_origins}, "
                f"model.step={self.step}: {self.min_history_days()} days in all): lower model.n_origins, "
                "model.step or model.horizon, or add history"
            )
        return usable, left_out

    def _inner_forecasts(
        self, model: Forecaster, df: pd.DataFrame, cutoffs: list[pd.Timestamp]
    ) -> pd.DataFrame:
        """``model``'s forecasts at each inner origin beside the actuals and the MASE scale."""
        levels = self._levels()
        horizon = pd.Timedelta(days=int(self.horizon))
        folds = []
        for cutoff in cutoffs:
            train = df[df["ds"] <= cutoff]
            window = df[(df["ds"] > cutoff) & (df["ds"] <= cutoff + horizon)]
            # What the forecast may depend on: the history and the test window's regressors.
            known = window[["unique_id", "ds", *(c for c in window.columns if c.startswith("x_"))]]
            key = joblib.hash((model, int(self.horizon), levels, train, known))
            forecast = _MEMO.get(key)
            if forecast is None:
                forecast = clone(model).fit(train).predict(int(self.horizon), levels, future=known)
                _MEMO[key] = forecast
                while len(_MEMO) > _MEMO_SIZE:
                    _MEMO.popitem(last=False)
            else:
                _MEMO.move_to_end(key)
            fold = window[["unique_id", "ds", "y"]].merge(
                forecast, on=["unique_id", "ds"], validate="one_to_one"
            )
            fold["h"] = (fold["ds"] - cutoff).dt.days
            fold["cutoff"] = cutoff
            fold["scale"] = fold["unique_id"].map(_scales(train, int(self.season_length)))
            folds.append(fold)
        return pd.concat(folds, ignore_index=True)


def _scales(train: pd.DataFrame, season_length: int) -> pd.Series:
    """Each series' MASE denominator at an inner origin (as the outer backtest computes it)."""
    return train.groupby("unique_id")["y"].apply(lambda y: seasonal_naive_scale(y, season_length))


def _combine(forecasts: list[pd.DataFrame], weights: Sequence[float], levels: list[int]) -> pd.DataFrame:
    """Weighted day-by-day combination of aligned inner forecasts (means and bounds alike)."""
    columns = ["mean", *interval_columns(levels)]
    stacked = np.stack([f[columns].to_numpy(dtype=float) for f in forecasts])
    out = forecasts[0].drop(columns=columns).copy()
    out[columns] = np.tensordot(np.asarray(weights, dtype=float), stacked, axes=1)
    return out


def _scores(forecasts: Mapping[str, pd.DataFrame], levels: list[int]) -> pd.DataFrame:
    rows = []
    for name, fold in forecasts.items():
        error = (fold["y"] - fold["mean"]).abs()
        row = {"name": name, "mase": float((error / fold["scale"]).mean()), "mae": float(error.mean())}
        row |= {f"coverage_{lv}": c for lv, c in interval_coverage(fold, levels).items()}
        rows.append(row)
    return pd.DataFrame(rows)


def selection_table(model: AutoForecaster, df: pd.DataFrame, cutoffs: Sequence[pd.Timestamp]) -> pd.DataFrame:
    """The inner scores behind ``model``'s choice at each outer origin, with ``cutoff`` first.

    The inner forecasts are the memoised ones of the backtest that just ran, so this costs little
    when run right after it in the same process.
    """
    tables = [model.select(df[df["ds"] <= cutoff]).assign(cutoff=pd.Timestamp(cutoff)) for cutoff in cutoffs]
    table = pd.concat(tables, ignore_index=True)
    return table[["cutoff", *[c for c in table.columns if c != "cutoff"]]]


def left_out_lines(table: pd.DataFrame) -> list[str]:
    """One line per candidate left out of any choice in a :func:`selection_table` (with the final
    fit's scores appended, ``cutoff`` empty): the newest reason and how many choices it missed."""
    if "left_out" not in table or not (table["left_out"].fillna("") != "").any():
        return []
    choices = table["cutoff"].nunique(dropna=False)  # the final fit's is empty (NaT)
    dropped = table[table["left_out"].fillna("") != ""]
    return [
        f"{rows['left_out'].iloc[-1]} ({rows['cutoff'].nunique(dropna=False)} of {choices} choices)"
        for _, rows in dropped.groupby("name", sort=False)
    ]
