"""Rolling-origin (expanding-window) backtests: refit at each origin, forecast, compare with truth."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd
from sklearn.base import clone
from tqdm.auto import tqdm

from forecasting.metrics import MASE_SCALES, mase_scale
from forecasting.models.base import DEFAULT_LEVELS, Forecaster
from forecasting.task_split import task_chunks
from mlops.errors import ConfigError

MIN_TRAIN_DAYS = 28
# How the settings are spelled on the command line, for messages that say what to change.
SETTING_NAMES = {
    "horizon": "backtest.horizon",
    "n_origins": "backtest.n_origins",
    "step": "backtest.step",
    "season_length": "backtest.season_length",
    "first_cutoff": "backtest.first_cutoff",
    "mase_scale": "backtest.mase_scale",
    "exclude": "data.exclude_series",
}


def backtest_cutoffs(
    last_date: pd.Timestamp,
    horizon: int,
    n_origins: int,
    step: int,
    first_cutoff: str | pd.Timestamp | None = None,
) -> list[pd.Timestamp]:
    """Origins (last training day of each fold), oldest first.

    By default the newest origin leaves exactly ``horizon`` days before ``last_date``; with
    ``first_cutoff`` the origins start there instead (as in a published protocol) and must still
    leave ``horizon`` days of data after the newest one.
    """
    for name, value in {"horizon": horizon, "n_origins": n_origins, "step": step}.items():
        if int(value) < 1:
            raise ConfigError(f"backtest.{name} must be at least 1, got {value}")
    last_date = pd.Timestamp(last_date)
    if first_cutoff is None:
        newest = last_date - pd.Timedelta(days=horizon)
        return [newest - pd.Timedelta(days=step * k) for k in reversed(range(n_origins))]
    cutoffs = [pd.Timestamp(first_cutoff) + pd.Timedelta(days=step * k) for k in range(n_origins)]
    if cutoffs[-1] + pd.Timedelta(days=horizon) > last_date:
        raise ConfigError(
            f"backtest: the newest origin {cutoffs[-1]:%Y-%m-%d} plus {horizon} days runs past the data "
            f"({last_date:%Y-%m-%d}); lower backtest.n_origins or move backtest.first_cutoff earlier"
        )
    return cutoffs


def check_history(
    df: pd.DataFrame,
    cutoffs: Sequence[pd.Timestamp],
    horizon: int,
    n_origins: int,
    step: int,
    season_length: int = 7,
    fixed_start: bool = False,
    setting_names: Mapping[str, str] | None = None,
    model_days: int = 1,
) -> None:
    """Refuse a backtest in which a series has too little history before the oldest origin.

    Every series needs ``MIN_TRAIN_DAYS`` days (and more than a season, for MASE's scale) up to the
    oldest origin, and at least what the model says it needs (``model_days``); otherwise that series
    would be silently missing from the early folds or make a model fail with a message that does not
    say which setting to change. The error names the shortest series, the days it has and needs,
    and the settings that fix it.
    """
    names = {**SETTING_NAMES, **(setting_names or {})}
    needed = max(MIN_TRAIN_DAYS, int(season_length) + 1, int(model_days))
    model_binds = int(model_days) > max(MIN_TRAIN_DAYS, int(season_length) + 1)
    why = f" (the model needs {model_days})" if model_binds else ""
    oldest = pd.Timestamp(cutoffs[0])
    series = df["unique_id"].unique()
    available = df[df["ds"] <= oldest].groupby("unique_id").size().reindex(series, fill_value=0)
    short = available[available < needed].sort_values()
    if short.empty:
        return
    uid, has = short.index[0], int(short.iloc[0])
    others = f" ({len(short)} series are too short)" if len(short) > 1 else ""
    if fixed_start:
        fix = f"move {names['first_cutoff']} later"
        span = ""
    else:
        fix = f"shorten {names['horizon']}, lower {names['n_origins']} or {names['step']}"
        total = needed + int(horizon) + int(step) * (int(n_origins) - 1)
        span = (
            f", i.e. {total} days of data per series with {names['horizon']}={horizon}, "
            f"{names['n_origins']}={n_origins} and {names['step']}={step}"
        )
    if model_binds:
        fix += (
            " (or what the model needs, e.g. fewer intervals.n_windows or intervals.recalibrate=never "
            "when its intervals are recalibrated, a lower model.calibration_days for LightGBM, a lower "
            "model.n_origins, model.step or model.horizon for auto)"
        )
    raise ConfigError(
        f"series {uid!r} has {has} day(s) of training data up to the oldest backtest origin "
        f"{oldest:%Y-%m-%d}; every series needs at least {needed} there{why}{span}{others}: {fix}, "
        f"or leave the series out with {names['exclude']}=[{uid}]"
    )


def origin_scales(train: pd.DataFrame, season_length: int = 7, kind: str = "seasonal_naive") -> pd.Series:
    """Each series' MASE denominator at an origin: by default the in-sample MAE of the seasonal
    naive forecast; ``kind="mean_deviation"`` for the mean absolute deviation from the mean."""
    return train.groupby("unique_id")["y"].apply(lambda y: mase_scale(y, kind, season_length))


def rolling_origin_backtest(
    forecaster: Forecaster,
    df: pd.DataFrame,
    horizon: int,
    n_origins: int,
    step: int = 7,
    level: Sequence[int] = DEFAULT_LEVELS,
    season_length: int = 7,
    first_cutoff: str | pd.Timestamp | None = None,
    progress: bool | None = None,
    setting_names: Mapping[str, str] | None = None,
    mase_scale: str = "seasonal_naive",
    map_tasks: Callable[..., list] | None = None,
    series_per_task: int | None = None,
) -> pd.DataFrame:
    """Refit a fresh copy of ``forecaster`` at each origin and forecast ``horizon`` days.

    Extra ``x_*`` regressors are taken as known in advance: each forecast gets their actual values
    over its test window as ``future``. For a forecast input such as temperature this means a
    perfect weather forecast, so the scores are a best case; in service the model gets forecast
    values, whose errors add to its own.

    Parameters
    ----------
    df : DataFrame
        Long-format history ``unique_id, ds, y`` and any ``x_*`` regressors (other columns, e.g.
        ``y_expected``, are carried into the result beside the actuals).
    horizon, n_origins, step : int
        Days forecast from each origin, number of origins, and days between origins. The newest
        origin leaves exactly ``horizon`` days of test data.
    season_length : int
        Period of the seasonal naive forecast that scales MASE.
    first_cutoff : date, optional
        Oldest origin, for protocols fixed from the start (see :func:`backtest_cutoffs`).
    progress : bool, optional
        Show a progress bar; by default only for more than a few origins.
    setting_names : mapping, optional
        How the caller's settings are spelled in error messages (default ``backtest.horizon``,
        ``backtest.n_origins``, ``backtest.step``, ``backtest.season_length``, ``backtest.first_cutoff``
        and ``data.exclude_series``).
    mase_scale : str
        MASE's denominator: ``seasonal_naive`` (default) or ``mean_deviation`` (mean absolute
        deviation from the training mean), see :func:`forecasting.metrics.mase_scale`.
    map_tasks : callable, optional
        ``map_tasks(fn, tasks, shared)`` returning ``[fn(task, **shared) for task in tasks]`` in
        order, e.g. an engine's ``map`` (:mod:`mlops.engine`) to run the folds on a cluster; by
        default they run here, one after another. The results do not depend on it.
    series_per_task : int, optional
        With ``map_tasks``, cut each origin into chunks of this many series when the model fits
        each series alone, or into chunks of whole keys for a model per partition key
        (:func:`forecasting.task_split.task_chunks`); ignored for other models.

    Returns
    -------
    DataFrame
        One row per series, origin and forecast day: ``unique_id, cutoff, ds, h`` (days ahead, 1 =
        the day after the origin), the actual ``y`` and extra columns, the forecast columns, and
        ``scale``, the in-sample MAE of the seasonal naive forecast up to that origin (MASE's
        denominator).
    """
    names = {**SETTING_NAMES, **(setting_names or {})}
    if int(season_length) < 1:
        raise ConfigError(f"{names['season_length']}={season_length}: must be a whole number of days >= 1")
    if mase_scale not in MASE_SCALES:
        raise ConfigError(f"{names['mase_scale']}={mase_scale}: must be one of {', '.join(MASE_SCALES)}")
    cutoffs = backtest_cutoffs(df["ds"].max(), horizon, n_origins, step, first_cutoff)
    model_days = forecaster.min_history_days() if hasattr(forecaster, "min_history_days") else 1
    check_history(
        df, cutoffs, horizon, n_origins, step, season_length, first_cutoff is not None, names, model_days
    )
    settings = {
        "forecaster": forecaster,
        "horizon": horizon,
        "level": level,
        "season_length": season_length,
        "mase_scale": mase_scale,
    }
    if map_tasks is not None:
        chunks = task_chunks(forecaster, df["unique_id"].unique(), series_per_task)
        tasks = [(cutoff, chunk) for cutoff in cutoffs for chunk in chunks]
        history = df if chunks == [None] else split_by_chunk(df, chunks)
        return pd.concat(map_tasks(backtest_fold, tasks, {"df": history, **settings}), ignore_index=True)
    show = progress if progress is not None else n_origins > 4
    folds = [
        backtest_fold((cutoff, None), df, **settings)
        for cutoff in tqdm(cutoffs, desc="backtest origins", disable=not show, leave=False)
    ]
    return pd.concat(folds, ignore_index=True)


def split_by_chunk(
    df: pd.DataFrame, chunks: Sequence[tuple[str, ...]]
) -> dict[tuple[str, ...], pd.DataFrame]:
    """Each chunk's rows of ``df`` (in their order, with their index), in one pass over ``df``.

    Tasks then look their series up instead of each scanning the whole history: at 10,000 series
    that scan (about 1 s a task) cost more than fitting a chunk of 20 series with ETS or the GLM.
    """
    chunk_of = {uid: i for i, chunk in enumerate(chunks) for uid in chunk}
    labels = df["unique_id"].map(chunk_of)
    parts = dict(iter(df.groupby(labels, sort=True)))
    return {chunk: parts.get(i, df.iloc[:0]) for i, chunk in enumerate(chunks)}


def backtest_fold(
    task: tuple[pd.Timestamp, Sequence[str] | None],
    df: pd.DataFrame | Mapping[tuple[str, ...], pd.DataFrame],
    forecaster: Forecaster,
    horizon: int,
    level: Sequence[int],
    season_length: int,
    mase_scale: str,
) -> pd.DataFrame:
    """One fold of :func:`rolling_origin_backtest`: fit at origin ``task[0]`` on the series
    ``task[1]`` (all when None) and score the next ``horizon`` days. ``df`` is the history, or
    each chunk's history by chunk (:func:`split_by_chunk`)."""
    cutoff, series = task
    if isinstance(df, Mapping):
        df = df[tuple(series)]
    elif series is not None:
        df = df[df["unique_id"].isin(series)]
    train = df[df["ds"] <= cutoff]
    test = df[(df["ds"] > cutoff) & (df["ds"] <= cutoff + pd.Timedelta(days=horizon))]
    forecast = clone(forecaster).fit(train).predict(horizon, level, future=test)
    fold = test.merge(forecast, on=["unique_id", "ds"], how="inner", validate="one_to_one")
    scale = origin_scales(train, season_length, mase_scale)
    fold.insert(1, "cutoff", cutoff)
    fold.insert(3, "h", (fold["ds"] - cutoff).dt.days)
    fold["scale"] = fold["unique_id"].map(scale)
    return fold
