"""Backtests on a Dask cluster give the same table as the plain loop, and survive a lost worker."""

from __future__ import annotations

import os
import signal
import threading
import time

import pandas as pd
import pytest

from forecasting.backtest import rolling_origin_backtest
from forecasting.models import CalendarGLM, Ensemble, GlobalLightGBM, PerKey, SeasonalNaive
from forecasting.models.lightgbm_global import allowed_threads
from forecasting.task_split import fits_series_alone, series_chunks, task_chunks
from tests.engine.conftest import worker_pids

PROTOCOL = {"horizon": 14, "n_origins": 2, "step": 7}


@pytest.fixture(scope="module")
def recent_counts(synthetic_counts) -> pd.DataFrame:
    """Four series, 2023: enough for two origins, quick to fit."""
    series = sorted(synthetic_counts["unique_id"].unique())[:4]
    recent = synthetic_counts["ds"] >= "2023-01-01"
    frame = synthetic_counts[synthetic_counts["unique_id"].isin(series) & recent]
    return frame[["unique_id", "ds", "y"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def two_keys(synthetic_counts) -> pd.DataFrame:
    """Two series of each of two areas (keys city, coast), 2023."""
    series = ["city/C1", "city/C2", "coast/C1", "coast/C2"]
    recent = synthetic_counts["ds"] >= "2023-01-01"
    frame = synthetic_counts[synthetic_counts["unique_id"].isin(series) & recent]
    return frame[["unique_id", "ds", "y"]].reset_index(drop=True)


def test_per_series_models_split_by_series_and_global_ones_do_not():
    assert fits_series_alone(CalendarGLM())
    assert fits_series_alone(Ensemble([SeasonalNaive(), CalendarGLM()]))
    assert not fits_series_alone(GlobalLightGBM())
    assert not fits_series_alone(Ensemble([GlobalLightGBM(), CalendarGLM()]))
    assert series_chunks(["c", "a", "b"], 2) == [("a", "b"), ("c",)]
    assert series_chunks(["a", "b"], None) == [None]


def test_a_model_per_key_splits_by_whole_keys():
    per_key = PerKey(GlobalLightGBM())
    ids = ["b/2", "a/1", "c/1", "a/2", "b/1"]
    assert not fits_series_alone(per_key)
    assert task_chunks(per_key, ids, None) == [("a/1", "a/2"), ("b/1", "b/2"), ("c/1",)]
    assert task_chunks(per_key, ids, 3) == [("a/1", "a/2"), ("b/1", "b/2", "c/1")]
    assert task_chunks(per_key, ids, 1) == [("a/1", "a/2"), ("b/1", "b/2"), ("c/1",)]  # keys stay whole
    assert task_chunks(per_key, ids, 10) == [None]
    assert task_chunks(GlobalLightGBM(), ids, 2) == [None]
    assert task_chunks(CalendarGLM(), ids, 2) == [("a/1", "a/2"), ("b/1", "b/2"), ("c/1",)]


def test_series_tasks_get_their_chunks_history_split_once(recent_counts):
    # Each task looks its series up rather than scanning the whole history (at 10,000 series a
    # scan a task cost more than fitting 20 series of ETS); the table is the loop's.
    sent = {}

    def record_and_loop(fn, tasks, shared):
        sent.update(shared)
        return [fn(task, **shared) for task in tasks]

    loop = rolling_origin_backtest(SeasonalNaive(), recent_counts, **PROTOCOL)
    mapped = rolling_origin_backtest(
        SeasonalNaive(), recent_counts, **PROTOCOL, map_tasks=record_and_loop, series_per_task=3
    )
    chunks = series_chunks(recent_counts["unique_id"].unique(), 3)
    assert isinstance(sent["df"], dict) and list(sent["df"]) == chunks
    for chunk, part in sent["df"].items():
        assert part.equals(recent_counts[recent_counts["unique_id"].isin(chunk)])
    assert mapped.equals(loop)


def test_lightgbm_threads_follow_the_process_limit(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Dask's nanny gives each worker
    assert allowed_threads(2) == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert allowed_threads(2) == 2


def _small_lightgbm():
    return GlobalLightGBM(n_estimators=20, calibration_days=56)


@pytest.mark.parametrize(
    ("make_model", "data"),
    [
        (CalendarGLM, "recent_counts"),
        (_small_lightgbm, "recent_counts"),
        (lambda: PerKey(_small_lightgbm()), "two_keys"),
    ],
    ids=["glm_per_series_chunks", "lightgbm_per_origin", "lightgbm_per_key"],
)
def test_dask_backtest_equals_the_local_loop(dask_engine, request, make_model, data):
    counts = request.getfixturevalue(data)
    local = rolling_origin_backtest(make_model(), counts, **PROTOCOL, progress=False)
    mapped = rolling_origin_backtest(
        make_model(), counts, **PROTOCOL, map_tasks=dask_engine.map, series_per_task=2
    )
    pd.testing.assert_frame_equal(local, mapped)


def test_each_key_forecasts_as_if_fitted_alone(two_keys):
    """A key's forecast does not depend on the other keys' series."""
    together = PerKey(_small_lightgbm()).fit(two_keys).predict(14)
    coast = two_keys[two_keys["unique_id"].str.startswith("coast/")]
    alone = _small_lightgbm().fit(coast).predict(14)
    pd.testing.assert_frame_equal(
        together[together["unique_id"].isin(coast["unique_id"])].reset_index(drop=True), alone
    )
    with pytest.raises(ValueError, match="model.separator='_': no series id contains it"):
        PerKey(_small_lightgbm(), separator="_").fit(two_keys)


def test_a_worker_killed_mid_job_loses_nothing(dask_engine):
    """Tasks of a worker that dies are rescheduled on the others: the job completes, in order."""
    before = worker_pids(dask_engine)
    killer = threading.Timer(1.0, os.kill, args=(before[0], signal.SIGKILL))
    killer.start()
    started = time.monotonic()
    # With a shared argument: it lives on one worker at first, and may be on the one killed.
    results = dask_engine.map(_wait_and_echo, [(0.4, k) for k in range(12)], {"offset": 100})
    killer.join()
    assert results == list(range(100, 112))
    assert time.monotonic() - started > 1.0  # the kill happened while tasks were running
    dask_engine.client.wait_for_workers(2, timeout=30)
    assert before[0] not in worker_pids(dask_engine)  # the nanny started a new worker


def _wait_and_echo(task, offset):
    seconds, value = task
    time.sleep(seconds)
    return value + offset
