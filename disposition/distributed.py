"""Training the remote-closure model out of core: call records from a Parquet folder on a Dask cluster.

The calls never sit in one process. Each step is a pandas function mapped over the partitions:

1. categorical levels are collected per partition and merged, so every partition is encoded with
   the same fixed levels (:class:`~disposition.features.CallEncoder`, as the in-memory job uses);
2. the windows are temporal, cut at whole days from the calls per day (counted per partition and
   summed): training on the earliest calls, calibration on the next, test on the latest;
3. ``lightgbm.dask.DaskLGBMClassifier`` trains on the encoded training window (persisted first,
   one fit per cluster at a time: lightgbm.dask cannot share a cluster between fits); ``to_local()``
   gives the plain booster, which the existing scorer, pyfunc and serving code use unchanged;
4. calibration and the safety threshold use the calibration window's raw scores, labels and
   hard-rule flags (three numbers a call, gathered; capped at ``max_rows`` by a seeded sample), the
   same :func:`~disposition.calibration.fit_calibrator` and Learn-then-Test threshold as in memory;
5. the test window is scored the same way for AUC and the deployed share and under-triage.

Library code: no Hydra, no MLflow. It needs a ``distributed.Client`` for the LightGBM fit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import dask.dataframe as dd
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from disposition.calibration import fit_calibrator
from disposition.evaluation import SafetySettings
from disposition.features import CallEncoder, add_time_features, categorical_strings
from disposition.model import TreeModel
from disposition.safety import ClosureResult, HardRule, excluded_by_rules
from disposition.scorer import FeatureSpec, RemoteClosureScorer
from mlops.engine import ClusterError

T = TypeVar("T")


@dataclass(frozen=True)
class CallColumns:
    """Which columns of the call records are features, target and rules."""

    features: FeatureSpec
    target: str
    rules: tuple[HardRule, ...] = ()

    @property
    def read(self) -> list[str]:
        """Columns to read from the files (nothing else is loaded)."""
        names = [*self.features.categorical, *self.features.numeric, self.target]
        if self.features.date_column:
            names.append(self.features.date_column)
        names += [rule.column for rule in self.rules]
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class OutOfCoreResult:
    scorer: RemoteClosureScorer
    window_sizes: dict[str, int]
    bounds: dict[str, str]
    selection: ClosureResult
    test: ClosureResult
    test_auc: float
    example: pd.DataFrame  # a few thousand training calls: types for the signature, a made-up example


def read_calls(path: str, columns: CallColumns) -> dd.DataFrame:
    """The call records in ``path`` (a folder of Parquet files, or one file) as a Dask DataFrame."""
    return dd.read_parquet(path, columns=columns.read)


def fixed_encoder(calls: dd.DataFrame, features: FeatureSpec) -> CallEncoder:
    """A fitted :class:`CallEncoder` whose levels are the union over all partitions."""
    parts = calls[features.categorical].map_partitions(_partition_levels, meta=(None, object)).compute()
    levels = {name: sorted(set().union(*(part[name] for part in parts))) for name in features.categorical}
    return CallEncoder.from_dict(
        {"categorical": list(features.categorical), "numeric": features.model_numeric, "levels": levels}
    )


def window_bounds(
    calls: dd.DataFrame, date_column: str, calibration_fraction: float, test_fraction: float
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First day of the calibration and of the test window, from the calls per day (summed over
    partitions): whole days, each window holding about its fraction of the calls."""
    days = calls[date_column].map_partitions(_day, meta=(date_column, "datetime64[ns]"))
    counts = days.map_partitions(lambda part: part.value_counts(), meta=pd.Series(dtype="int64"))
    per_day = counts.compute().groupby(level=0).sum().sort_index()
    share = per_day.cumsum() / per_day.sum()
    cal_start = share.index[share.searchsorted(1 - calibration_fraction - test_fraction, side="right")]
    test_start = share.index[share.searchsorted(1 - test_fraction, side="right")]
    if not share.index[0] < cal_start < test_start:
        raise ValueError(f"{date_column}: the calls span too few days for three time windows")
    return pd.Timestamp(cal_start), pd.Timestamp(test_start)


def fit_booster(client, train: dd.DataFrame, encoder: CallEncoder, columns: CallColumns, params: dict):
    """Fit ``DaskLGBMClassifier`` on the training window; return the plain LightGBM booster."""
    from lightgbm.dask import DaskLGBMClassifier

    X, y = training_arrays(train, encoder, columns)
    # Not persisted here: lightgbm.dask computes and waits for every part itself before it sets up
    # its network (and a persisted dask-expr frame handed to it lost its parts in our tests).
    model = DaskLGBMClassifier(client=client, **params)
    watching_workers(
        client,
        lambda: model.fit(
            X,
            y,
            feature_name=list(encoder.feature_names_),
            categorical_feature=list(range(len(encoder.categorical))),
        ),
    )
    return model.to_local().booster_


class WorkerLostError(ClusterError):
    """A worker the distributed fit started with is gone; the fit cannot finish without it."""


def watching_workers(client, fit: Callable[[], T], poll_seconds: float = 1.0) -> T:
    """``fit()`` (a lightgbm.dask fit) while watching the cluster's workers.

    lightgbm.dask has no fault tolerance (LightGBM issue #5920): when a worker dies mid-fit (killed,
    or restarted by its nanny at the memory limit, as a 50 M-call fit did at 4 GiB), the others wait
    for it in LightGBM's network until its socket time-out (hours), and the job hangs. So the fit
    runs in a thread, and the job fails with what to do as soon as a worker it started with is gone;
    the remaining workers are restarted to free them. Nothing is registered: that comes after.
    """
    workers = set(client.scheduler_info()["workers"])
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = fit()
        except BaseException as error:  # re-raised in the caller's thread below
            outcome["error"] = error

    thread = threading.Thread(target=run, name="lightgbm-dask-fit", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(poll_seconds)
        lost = workers - set(client.scheduler_info()["workers"])
        if lost and thread.is_alive():
            _free(client, workers - lost)
            raise WorkerLostError(_lost_message(lost))
    if "error" in outcome:
        # A survivor may notice first, as a LightGBM socket error, before the scheduler has
        # removed the dead worker: give the scheduler a few seconds, then say what happened.
        lost = workers - set(client.scheduler_info()["workers"])
        deadline = time.monotonic() + (10 if "socket" in str(outcome["error"]).lower() else 0)
        while not lost and time.monotonic() < deadline:
            time.sleep(poll_seconds)
            lost = workers - set(client.scheduler_info()["workers"])
        if lost:
            raise WorkerLostError(_lost_message(lost)) from outcome["error"]
        raise outcome["error"]
    return outcome["value"]


def _lost_message(lost: set[str]) -> str:
    return (
        f"the Dask cluster lost worker(s) {sorted(lost)} during the out-of-core LightGBM fit, which "
        "cannot continue without them (lightgbm.dask has no fault tolerance); nothing was "
        "registered: give each worker more memory (engine.memory_limit) or add workers, and run again"
    )


def _free(client, workers: set[str]) -> None:
    """Restart the workers still blocked in the abandoned fit (best effort: needs their nannies)."""
    try:
        client.restart_workers(sorted(workers), timeout=60, raise_for_error=False)
    except Exception:  # noqa: BLE001 - the job already fails with the lost worker's message
        pass


def training_arrays(train: dd.DataFrame, encoder: CallEncoder, columns: CallColumns):
    """The window's float32 features and int8 labels as dask arrays with the same row chunks, one
    per non-empty partition (a window cut by time leaves some partitions empty, and LightGBM refuses
    an empty part).

    Both come from ONE list of partitions (``to_delayed``: the frame's graph optimised once).
    dask-expr fuses Parquet partitions by the share of the columns a graph reads, so partitions
    counted in one graph, or the label column taken on its own, need not line up with the features'
    (a 50-file folder gave 25 feature parts against 7 label parts; dropping "empty" partitions by
    counts from another graph dropped a third of a 5-file training window). Plain numpy parts are
    also what LightGBM trains on without a copy of its own.
    """
    import dask
    import dask.array as da

    parts = train.to_delayed()
    lengths = dask.compute(*[dask.delayed(len)(part) for part in parts])
    # Plain dicts as arguments: dask names tasks by hashing them, and must get the same names each
    # time lightgbm.dask rebuilds the graph (an estimator object does not hash stably).
    state, features = encoder.to_dict(), vars(columns.features)
    width = len(encoder.feature_names_)
    kept = [(part, n) for part, n in zip(parts, lengths, strict=True) if n > 0]
    if not kept:
        raise ValueError("the training window holds no calls")
    X = da.concatenate(
        [
            da.from_delayed(dask.delayed(_feature_array)(part, state, features), (n, width), np.float32)
            for part, n in kept
        ]
    )
    y = da.concatenate(
        [da.from_delayed(dask.delayed(_label_array)(part, columns.target), (n,), np.int8) for part, n in kept]
    )
    return X, y


def scored_window(
    window: dd.DataFrame, model: TreeModel, columns: CallColumns, max_rows: int | None, seed: int
) -> pd.DataFrame:
    """Raw score, label and hard-rule exclusion of each call in ``window``, gathered to this process.

    With ``max_rows``, a seeded random sample of about that many calls.
    """
    meta = pd.DataFrame(
        {"raw": pd.Series(dtype=float), "y": pd.Series(dtype="int8"), "excluded": pd.Series(dtype=bool)}
    )
    scored = window.map_partitions(_score_partition, model, columns, meta=meta)
    if max_rows is not None:
        total = int(window.shape[0].compute())
        if total > max_rows:
            scored = scored.sample(frac=max_rows / total, random_state=seed)
    return scored.compute().reset_index(drop=True)


def train_out_of_core(
    client,
    calls: dd.DataFrame,
    columns: CallColumns,
    params: dict,
    fractions: tuple[float, float],
    safety: SafetySettings,
    calibration: dict,
    max_rows: int | None,
    seed: int = 0,
) -> OutOfCoreResult:
    """The whole out-of-core fit: encoder, windows, booster, calibration, threshold, test scores."""
    features = columns.features
    encoder = fixed_encoder(calls, features)
    cal_start, test_start = window_bounds(calls, features.date_column, *fractions)
    when = calls[features.date_column]
    windows = {
        "training": calls[when < cal_start],
        "calibration": calls[(when >= cal_start) & (when < test_start)],
        "test": calls[when >= test_start],
    }
    sizes = {
        name: int(n)
        for name, n in zip(
            windows, client.compute([w.shape[0] for w in windows.values()], sync=True), strict=True
        )
    }
    booster = fit_booster(client, windows["training"], encoder, columns, params)
    model = TreeModel(encoder, booster)
    cal = scored_window(windows["calibration"], model, columns, max_rows, seed)
    calibrator = fit_calibrator(cal["raw"], cal["y"], calibration["method"], calibration["isotonic_min_rows"])
    p_cal = calibrator.predict(cal["raw"].to_numpy())
    selection = safety.choose(p_cal, cal["y"].to_numpy() == 0, ~cal["excluded"].to_numpy())
    test = scored_window(windows["test"], model, columns, max_rows, seed + 1)
    p_test = calibrator.predict(test["raw"].to_numpy())
    eligible = ~test["excluded"].to_numpy()
    deployed = safety.apply(p_test, test["y"].to_numpy() == 0, eligible, selection.threshold)
    example = windows["training"].head(5000, npartitions=-1)
    ranges = exact_ranges(windows["training"], features)
    scorer = RemoteClosureScorer(
        model, calibrator, selection.threshold, columns.rules, features, ranges=ranges
    )
    return OutOfCoreResult(
        scorer=scorer,
        window_sizes=sizes,
        bounds={"calibration_start": cal_start.isoformat(), "test_start": test_start.isoformat()},
        selection=selection,
        test=deployed,
        test_auc=float(roc_auc_score(test["y"], test["raw"])),
        example=example,
    )


def exact_ranges(calls: dd.DataFrame, features: FeatureSpec) -> dict[str, list]:
    """Minimum and maximum of each numeric column and the call time, over every partition."""
    names = [*features.numeric, *([features.date_column] if features.date_column else [])]
    low, high = dd.compute(calls[names].min(), calls[names].max())
    ranges = {name: [float(low[name]), float(high[name])] for name in features.numeric if pd.notna(low[name])}
    if features.date_column and pd.notna(low[features.date_column]):
        ranges[features.date_column] = [
            pd.Timestamp(low[features.date_column]).isoformat(),
            pd.Timestamp(high[features.date_column]).isoformat(),
        ]
    return ranges


def encoded_features(part: pd.DataFrame, encoder: CallEncoder, features: FeatureSpec) -> pd.DataFrame:
    """One partition as the model's float32 features (category codes from the fixed levels)."""
    frame = add_time_features(part, features.date_column, features.time_features)
    return pd.DataFrame(encoder.transform(frame), columns=encoder.feature_names_, index=part.index)


def _feature_array(part: pd.DataFrame, encoder: dict, features: dict) -> np.ndarray:
    encoded = encoded_features(part, CallEncoder.from_dict(encoder), FeatureSpec(**features))
    return np.ascontiguousarray(encoded.to_numpy(), dtype=np.float32)


def _label_array(part: pd.DataFrame, target: str) -> np.ndarray:
    return part[target].to_numpy(dtype=np.int8)


def _score_partition(part: pd.DataFrame, model: TreeModel, columns: CallColumns) -> pd.DataFrame:
    encoded = encoded_features(part, model.encoder, columns.features).to_numpy()
    excluded, _ = excluded_by_rules(part, columns.rules)
    return pd.DataFrame(
        {
            "raw": model.raw_score(encoded) if len(part) else np.empty(0),
            "y": part[columns.target].to_numpy(dtype="int8"),
            "excluded": excluded,
        },
        index=part.index,
    )


def _partition_levels(part: pd.DataFrame) -> pd.Series:
    """Per partition, one set of level texts per categorical column (as the encoder reads them)."""
    levels = {name: {v for v in pd.unique(categorical_strings(part[name])) if v is not None} for name in part}
    return pd.Series([levels], dtype=object)


def _day(times: pd.Series) -> pd.Series:
    return pd.to_datetime(times).astype("datetime64[ns]").dt.floor("D")


def columns_from(
    categorical: Sequence[str],
    numeric: Sequence[str],
    date_column: str,
    time_features: Sequence[str],
    target: str,
    rules: Sequence[HardRule],
) -> CallColumns:
    """:class:`CallColumns` from plain lists (the ``calls`` config)."""
    spec = FeatureSpec(list(categorical), list(numeric), date_column, list(time_features))
    return CallColumns(spec, target, tuple(rules))
