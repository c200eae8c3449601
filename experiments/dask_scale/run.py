"""engine=local against engine=dask (a 2-worker LocalCluster) in one run: forecasting backtests,
out-of-core call-level training and batch scoring.

Issue 13's targets are 10,000 series x 5 years with 12 origins and 50 M calls; the sizes here are
parameters (conf/benchmark/dask_scale.yaml) and the page states the sizes measured. Wall-time
ratios are local / dask from the same run; per-task times from the scheduler's task stream give
the extrapolation to N workers: wall(N) ~ sum(task time) / N + the measured fixed cost (the dask
wall time minus sum(task time) / 2: scheduling, sending the data, gathering results).

Run: ``python -m experiments.bench benchmark=dask_scale``.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import psutil
from sklearn.metrics import roc_auc_score

from disposition.distributed import columns_from, fixed_encoder, read_calls, train_out_of_core, window_bounds
from disposition.evaluation import safety_settings
from disposition.safety import rules_from_mapping
from experiments.harness import ROOT, BenchmarkReport
from experiments.scale_benchmark.run import many_series
from forecasting.backtest import rolling_origin_backtest
from forecasting.metrics import summary_metrics
from forecasting.models import GlobalLightGBM, PerKey
from forecasting.task_split import fits_series_alone
from mlops.batch_scoring import ModelBundle, score_partition
from mlops.batch_scoring import _bundle as bundle_of
from mlops.batch_scoring import _load as load_model
from mlops.batch_scoring import _partitions as partitions_of
from mlops.engine import LocalEngine, start_engine
from mlops.errors import ConfigError

CALLS = ROOT / "data" / "synthetic" / "calls.parquet"
RESULTS = ROOT / "experiments" / "results"
CATEGORICAL = ["area", "category", "symptom_group", "sex"]
NUMERIC = [
    "age",
    "care_home",
    "contacts_7d",
    "contacts_30d",
    "long_term_conditions",
    "first_party_caller",
    "patient_alone",
    "severe_pain",
    "able_to_walk",
]
RULES = {"category": ["C1"]}
# Batch-scoring tasks of about this many calls (2 row groups of 100,000): several per worker, so
# the two workers finish together (the scorer's rows_per_task).
SCORE_ROWS_PER_TASK = 200_000
SAFETY = {
    "limit": 0.01,
    "delta": 0.05,
    "confirm_power": 0.5,
    "grid": 100,
    "confidence": 0.95,
    "two_sided": True,
}


# The backtested models: key (benchmark.params.model_areas), label. The per-series models are
# the toolkit's own configurations (conf/model/<key>.yaml, as `model=<key>` builds them).
PER_SERIES = {"glm": "CalendarGLM", "ets": "ETS", "arima": "ArimaRegression"}
MODEL_KEYS = [*PER_SERIES, "lightgbm", "lightgbm_per_key"]
TARGET_SERIES = 10_000  # issue 13's national scale
EXTRAPOLATED_WORKERS = (2, 4, 8, 16, 64)


def run(
    workdir: Path,
    n_areas: int,
    n_origins: int,
    horizon: int,
    step: int,
    series_per_task: int,
    lightgbm_estimators: int,
    call_copies: int,
    files: int,
    n_workers: int,
    memory_limit: str,
    score_copies: int = 1,
    small_classifier: dict | None = None,
    forecasting: bool = True,
    calls: bool = True,
    years: float | None = None,
    model_areas: dict | None = None,
) -> BenchmarkReport:
    """``forecasting=False`` runs only the call-level part, ``calls=False`` only the forecasting
    part; the page keeps the other section (and its table) as committed in experiments/results/
    and says from which commit. ``years`` keeps the last years of the generated history;
    ``model_areas`` backtests a model on its first areas only (e.g. ``{arima: 8}``)."""
    areas_of = _checked_model_areas(model_areas, n_areas, forecasting, calls)
    load_before = os.getloadavg()[0]
    data = _last_years(many_series(n_areas), years) if forecasting else None
    started = time.perf_counter()
    with start_engine(
        {"kind": "dask", "n_workers": n_workers, "threads_per_worker": 1, "memory_limit": memory_limit}
    ) as engine:
        engine.client.wait_for_workers(n_workers)
        startup = time.perf_counter() - started
        rows = []
        for key, label, make, single in _forecast_models(lightgbm_estimators) if forecasting else []:
            subset = _first_areas(data, areas_of[key])
            row = _forecast_row(
                label, make, single, subset, engine, horizon, n_origins, step, series_per_task
            )
            # The workers' peak resident memory so far (it only grows: the peak of this row or earlier).
            rows.append(
                {"key": key, **row, "worker_peak_gib": max(engine.client.run(_peak_rss_gib).values())}
            )
        load_middle = os.getloadavg()[0] if forecasting and calls else None
        call_rows, call_notes = [], {}
        if calls:
            calls_dir = _call_folder(workdir / "train", call_copies, files)
            score_dir = (
                calls_dir
                if score_copies == call_copies
                else _call_folder(workdir / "score", score_copies, files, later_dates=False)
            )
            call_rows, call_notes = _calls(engine, calls_dir, score_dir, small_classifier)
        peaks = engine.client.run(_peak_rss_gib)
    forecast = pd.DataFrame(rows) if forecasting else pd.read_csv(RESULTS / "dask_scale.csv")
    calls_table = pd.DataFrame(call_rows) if calls else pd.read_csv(RESULTS / "dask_scale_calls.csv")
    load_after = os.getloadavg()[0]
    client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    markdown = _page(
        data=data,
        forecast=forecast if forecasting else None,
        calls=calls_table if calls else None,
        notes=call_notes,
        peaks=peaks,
        client_peak=client_peak,
        startup=startup,
        load_before=load_before,
        load_after=load_after,
        n_origins=n_origins,
        horizon=horizon,
        n_workers=n_workers,
        memory_limit=memory_limit,
        load_middle=load_middle,
        step=step,
        series_per_task=series_per_task,
    )
    if not forecasting:
        markdown = _kept_forecasting(markdown)
    if not calls:
        markdown = _kept_calls(markdown)
    metrics = {
        "startup_seconds": startup,
        "worker_peak_gib_max": max(peaks.values()),
        **{f"calls_{k}": v for k, v in call_notes.items() if isinstance(v, int | float)},
    }
    if forecasting:
        metrics.update({f"ratio_{r.key}": r.ratio for r in forecast.itertuples()})
    return BenchmarkReport(markdown=markdown, metrics=metrics, tables={"": forecast, "calls": calls_table})


def _checked_model_areas(model_areas, n_areas: int, forecasting: bool, calls: bool) -> dict[str, int]:
    """Areas each model is backtested on (default all ``n_areas``); one line for a bad setting."""
    if not (forecasting or calls):
        raise ConfigError(
            "benchmark.params.forecasting and benchmark.params.calls are both false: nothing to run; "
            "set one of them to true"
        )
    given = dict(model_areas or {})
    unknown = sorted(set(given) - set(MODEL_KEYS))
    if unknown:
        raise ConfigError(
            f"benchmark.params.model_areas: unknown model(s) {', '.join(unknown)}; "
            f"use {', '.join(MODEL_KEYS)}"
        )
    for key, areas in given.items():
        if areas is not None and not (isinstance(areas, int) and 1 <= areas <= n_areas):
            raise ConfigError(
                f"benchmark.params.model_areas.{key}={areas}: must be a whole number of areas from 1 "
                f"to n_areas ({n_areas}), or null for all"
            )
    return {key: given.get(key) or n_areas for key in MODEL_KEYS}


def _last_years(data: pd.DataFrame, years: float | None) -> pd.DataFrame:
    """The last ``years`` x 365.25 days of every series (all of them when None)."""
    if not years:
        return data
    first = data["ds"].max() - pd.Timedelta(days=round(years * 365.25)) + pd.Timedelta(days=1)
    return data[data["ds"] >= first].reset_index(drop=True)


def _first_areas(data: pd.DataFrame, areas: int) -> pd.DataFrame:
    """The series of the first ``areas`` areas (``area00`` ... : the smaller ones, see many_series)."""
    names = sorted(data["unique_id"].str.split("/").str[0].unique())[:areas]
    return data[data["unique_id"].str.split("/").str[0].isin(names)].reset_index(drop=True)


def _configured(key: str):
    """The model as ``model=<key>`` configures it (conf/model/<key>.yaml, calendar.nation default)."""
    from omegaconf import OmegaConf

    from forecasting.pipeline import build_forecaster

    cfg = OmegaConf.create({"model": OmegaConf.load(ROOT / "conf" / "model" / f"{key}.yaml")})
    return build_forecaster(cfg.model)


def _forecast_models(lightgbm_estimators: int) -> list[tuple]:
    """(key, label, model factory, the same model single-threaded or None) for each row.

    The global LightGBM runs with the configured 2 threads here and is capped at the workers' 1
    (OMP_NUM_THREADS) on the cluster; its 1-thread local time shows how much of the ratio is the
    shared machine's thread contention. The per-series models fit with one thread everywhere."""

    def lightgbm(n_jobs):
        return GlobalLightGBM(n_estimators=lightgbm_estimators, n_jobs=n_jobs)

    per_series = [
        (key, f"{name} (per series, model={key})", lambda key=key: _configured(key), None)
        for key, name in PER_SERIES.items()
    ]
    return [
        *per_series,
        (
            "lightgbm",
            "GlobalLightGBM (one global model, tasks per origin)",
            lambda: lightgbm(2),
            lambda: lightgbm(1),
        ),
        (
            "lightgbm_per_key",
            "GlobalLightGBM per key (one model per area, tasks per origin x key)",
            lambda: PerKey(lightgbm(2)),
            lambda: PerKey(lightgbm(1)),
        ),
    ]


def _forecast_row(label, make, single, data, engine, horizon, n_origins, step, per_task) -> dict:
    # Each process fits the model once, untimed, before the clocks start: the imports and first-call
    # set-up are paid once per process (like the cluster's start-up), not per backtest.
    first = data[data["unique_id"] == data["unique_id"].min()]
    engine.client.run(_warm, make(), first, horizon, step)
    _warm(make(), first, horizon, step)
    start, cpu = time.perf_counter(), time.process_time()
    local = rolling_origin_backtest(make(), data, horizon, n_origins, step, progress=False)
    local_s, local_cpu = time.perf_counter() - start, time.process_time() - cpu
    local_1_s, local_1_cpu = np.nan, local_cpu  # a single-threaded model's own run
    if single is not None:
        start, cpu = time.perf_counter(), time.process_time()
        one_thread = rolling_origin_backtest(single(), data, horizon, n_origins, step, progress=False)
        local_1_s, local_1_cpu = time.perf_counter() - start, time.process_time() - cpu
        if not one_thread.equals(local):
            raise AssertionError(f"{label}: the 1-thread and 2-thread backtests differ")
    engine.client.get_task_stream()  # clear
    cpu_before = _cpu_seconds(engine) + time.process_time()
    start = time.perf_counter()
    with _TaskStream(engine.client) as stream:
        mapped = rolling_origin_backtest(
            make(), data, horizon, n_origins, step, map_tasks=engine.map, series_per_task=per_task
        )
    dask_s = time.perf_counter() - start
    dask_cpu = _cpu_seconds(engine) + time.process_time() - cpu_before
    identical = local.equals(mapped)
    tasks = stream.durations
    fixed = max(dask_s - sum(tasks) / 2, 0.0)
    # Per-series and per-key models split by series (at 10,000 series, into tasks of per_task
    # series), even where this size has fewer series than per_task (tasks here: origins).
    model = make()
    chunked = fits_series_alone(model) or isinstance(model, PerKey)
    row = {
        "model": label,
        "series": data["unique_id"].nunique(),
        "local_s": local_s,
        "local_1_thread_s": local_1_s,
        "dask_s": dask_s,
        "ratio": local_s / dask_s,
        "ratio_1_thread": local_1_s / dask_s,
        "local_1_thread_cpu_s": local_1_cpu,
        "dask_cpu_s": dask_cpu,
        "identical": identical,
        "mase_local": summary_metrics(local, [80, 95])["mase"],
        "mase_dask": summary_metrics(mapped, [80, 95])["mase"],
        "tasks": len(tasks),
        "task_s_sum": sum(tasks),
        "task_s_max": max(tasks, default=0.0),
        "fixed_s": fixed,
        "history_gib": data.memory_usage(deep=True).sum() / 1024**3,
        "chunked": chunked,
    }
    for n in (4, 8, 16):  # at this size: the same formula as _at_target's, k = 1
        row[f"extrapolated_{n}_workers_s"] = max(sum(tasks) / n, row["task_s_max"]) + fixed
    return {**row, **_at_target(row, per_task)}


def _warm(model, history: pd.DataFrame, horizon: int, step: int) -> None:
    """A one-origin backtest of ``model`` on ``history`` in this process, result unused."""
    rolling_origin_backtest(model, history, horizon, 1, step, progress=False)


def _at_target(row: dict, per_task: int | None) -> dict:
    """Wall seconds at TARGET_SERIES series on N workers, from this row's measured tasks.

    k = TARGET_SERIES / series. The work (sum of task times) grows k times; the longest task as its
    series: chunked models (per series, per key) run tasks of ``per_task`` series at that size
    (a task looks its series up in the history split once by chunk,
    forecasting.backtest.split_by_chunk, so it does not grow with the history), the global model
    the same tasks (origins) of every series. The fixed cost (scheduling, splitting and sending
    the history, gathering) grows k times (an upper estimate: part of it is per run).
    wall(N) = max(sum / N, longest task) + fixed; the local loop: k x the 1-thread local time.
    Linear in the series: an estimate, not a measurement.
    """
    k = TARGET_SERIES / row["series"]
    local = k * (row["local_s"] if np.isnan(row["local_1_thread_s"]) else row["local_1_thread_s"])
    here = min(per_task or row["series"], row["series"]) if row["chunked"] else row["series"]
    there = min(per_task or TARGET_SERIES, TARGET_SERIES) if row["chunked"] else TARGET_SERIES
    total, longest = k * row["task_s_sum"], row["task_s_max"] * there / here
    out = {"target_local_s": local, "target_history_gib": k * row["history_gib"]}
    for n in EXTRAPOLATED_WORKERS:
        out[f"target_{n}_workers_s"] = max(total / n, longest) + k * row["fixed_s"]
    return out


class _TaskStream:
    """Compute time of every task the scheduler ran inside the block (fold tasks, not transfers)."""

    def __init__(self, client):
        from distributed import get_task_stream

        self._stream = get_task_stream(client=client)

    def __enter__(self):
        self._inner = self._stream.__enter__()
        return self

    def __exit__(self, *exc):
        self._stream.__exit__(*exc)
        self.durations = [
            sum(part["stop"] - part["start"] for part in record["startstops"] if part["action"] == "compute")
            for record in self._inner.data
            if "backtest_fold" in str(record["key"])
        ]


def _call_folder(workdir: Path, copies: int, files: int, later_dates: bool = True) -> Path:
    """The committed synthetic calls, ``copies`` times over, in ``files`` Parquet files: each copy
    shifted to later years (time-ordered, so the temporal windows stay meaningful), or with its
    dates kept (``later_dates=False``: calls to score, which the model refuses in the future)."""
    base = pd.read_parquet(CALLS)
    span = base["call_time"].max() - base["call_time"].min() + pd.Timedelta(days=1)
    frames = []
    for k in range(copies):
        copy = base.copy()
        copy["call_time"] = copy["call_time"] + k * int(later_dates) * span
        copy["call_id"] = copy["call_id"] + k * len(base)
        frames.append(copy)
    calls = pd.concat(frames, ignore_index=True)
    folder = workdir / "calls"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for k, part in enumerate(np.array_split(np.arange(len(calls)), files)):
        calls.iloc[part].to_parquet(folder / f"part{k:03d}.parquet", index=False, row_group_size=100_000)
    return folder


# The out-of-core trainer's model (conf/disposition_distributed.yaml's classifier), for every
# call-level benchmark (this one and calls_at_scale.py).
OUT_OF_CORE_PARAMS = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 50,
    "random_state": 0,
    "verbose": -1,
}


def out_of_core_columns():
    """The committed synthetic calls' columns and hard rules, as the call-level benchmarks use them."""
    return columns_from(
        CATEGORICAL, NUMERIC, "call_time", ["hour", "day_of_week"], "safe_remote", rules_from_mapping(RULES)
    )


def _calls(engine, folder: Path, score_dir: Path, small_classifier: dict | None) -> tuple[list[dict], dict]:
    columns, params = out_of_core_columns(), dict(OUT_OF_CORE_PARAMS)
    frame = read_calls(str(folder), columns)
    start = time.perf_counter()
    result = _train(engine, frame, columns, params)
    dask_fit = time.perf_counter() - start
    # The same window on one machine with plain LightGBM, for the AUC comparison.
    encoder = fixed_encoder(frame, columns.features)
    cal_start, test_start = window_bounds(frame, "call_time", 0.2, 0.2)
    whole = pd.read_parquet(folder, columns=columns.read)
    from disposition.distributed import encoded_features

    train = whole[whole["call_time"] < cal_start]
    test = whole[whole["call_time"] >= test_start]
    start = time.perf_counter()
    local = lgb.LGBMClassifier(**params, n_jobs=2).fit(
        encoded_features(train, encoder, columns.features).to_numpy(),
        train["safe_remote"],
        categorical_feature=list(range(len(CATEGORICAL))),
    )
    local_fit = time.perf_counter() - start
    local_auc = roc_auc_score(
        test["safe_remote"],
        local.predict_proba(encoded_features(test, encoder, columns.features).to_numpy())[:, 1],
    )
    rows = [
        _row("training (dask, out of core)", sum(result.window_sizes.values()), dask_fit),
        _row("training (local LightGBM, same window)", len(train), local_fit),
    ]
    # Batch scoring, as mlops.batch_score does: the out-of-core model (200 trees of 31 leaves) on
    # the local engine and on the cluster, and, on the training folder, through MLflow's own
    # schema enforcement (the scorer before it enforced the schema column by column).
    shape = f"{params['n_estimators']} trees x {params['num_leaves']} leaves"
    bundle = _saved_bundle(result, folder.parent / "model")
    scored = {}
    for label, eng, where, how in (
        (f"batch scoring ({shape}), local engine", LocalEngine(), score_dir, score_partition),
        (f"batch scoring ({shape}), dask", engine, score_dir, score_partition),
        (f"... through MLflow's per-value schema enforcement, dask ({shape})", engine, folder, _score_plain),
    ):
        row, scores = _batch_score(label, eng, where, bundle, result.scorer.required_columns, how)
        rows.append(row)
        scored[label] = scores
    first, second, plain = scored.values()
    same_scores = first.equals(second)
    # The training folder is the scoring folder's first copy: the same calls, the same call ids.
    columnar = first.set_index("call_id").loc[plain["call_id"]].reset_index()
    same_as_plain = columnar.equals(plain)
    if small_classifier:
        small = {**params, **small_classifier}
        small_result = _train(engine, frame, columns, small)
        small_shape = f"{small['n_estimators']} trees x {small['num_leaves']} leaves"
        small_bundle = _saved_bundle(small_result, folder.parent / "model_small")
        row, _ = _batch_score(
            f"batch scoring ({small_shape}), dask",
            engine,
            score_dir,
            small_bundle,
            small_result.scorer.required_columns,
            score_partition,
        )
        rows.append(row)
    notes = {
        "n_calls": int(len(whole)),
        "n_scored": int(rows[2]["calls"]),
        "auc_dask": result.test_auc,
        "auc_local": float(local_auc),
        "auc_difference": abs(result.test_auc - float(local_auc)),
        "threshold": result.scorer.threshold,
        "test_share": result.test.share,
        "test_under_triage": result.test.under_triage,
        "same_scores_local_dask": bool(same_scores),
        "same_scores_columnar_plain": bool(same_as_plain),
        **_where_time_goes(result.scorer, score_dir, "large"),
    }
    if small_classifier:
        notes.update(_where_time_goes(small_result.scorer, score_dir, "small"))
    return rows, notes


def _where_time_goes(scorer, folder: Path, name: str, n: int = 200_000) -> dict:
    """CPU microseconds a call, on one task's worth of calls in this process with one LightGBM
    thread (as on a worker): the whole scorer (checks included, reasons none) and LightGBM's own
    ``predict`` within it."""
    import pyarrow.parquet as pq

    first = sorted(folder.glob("*.parquet"))[0]
    calls = pq.ParquetFile(first).read(columns=scorer.required_columns).slice(0, n).to_pandas()
    encoded = scorer.model.encode(scorer.model_frame(calls))
    scorer.model.booster.predict(encoded[:1000], raw_score=True, num_threads=1)  # warm
    start = time.process_time()
    scorer.model.booster.predict(encoded, raw_score=True, num_threads=1)
    lightgbm = time.process_time() - start
    start = time.process_time()
    scorer.check_plausible(calls)
    scorer.predict(calls, reasons="none")
    whole = time.process_time() - start
    return {f"{name}_us_scorer": 1e6 * whole / len(calls), f"{name}_us_lightgbm": 1e6 * lightgbm / len(calls)}


def _train(engine, frame, columns, params):
    safety = safety_settings(SAFETY, 1.0)
    calibration = {"method": "auto", "isotonic_min_rows": 10_000}
    return train_out_of_core(
        engine.client, frame, columns, params, (0.2, 0.2), safety, calibration, 2_000_000, 0
    )


def _row(step: str, calls: int, seconds: float, cpu: float = np.nan) -> dict:
    return {
        "step": step,
        "calls": calls,
        "seconds": seconds,
        "calls_per_s": calls / seconds,
        "cpu_s": cpu,
        "calls_per_cpu_s": calls / cpu if cpu > 0 else np.nan,
    }


def _batch_score(label, eng, folder: Path, bundle, required: list[str], how) -> tuple[dict, pd.DataFrame]:
    """Score every call in ``folder`` on ``eng``; wall and CPU seconds (the workers' processes on a
    cluster, this process's threads here), and the scores by call id."""
    out = folder.parent / f"scored_{abs(hash(label))}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    tasks = [
        (i, str(p), g)
        for i, (p, g) in enumerate(partitions_of(sorted(folder.glob("*.parquet")), SCORE_ROWS_PER_TASK))
    ]
    shared = {
        "bundle": bundle,
        "out_dir": str(out),
        "keep": ["call_id"],
        "params": {"reasons": "none"},
        "columns": [*required, "call_id"],
    }
    # The model is loaded once per worker process and job (as mlops.batch_score does), before the
    # clock starts: over 50 M calls that one load is nothing; here it would be a large share.
    start = time.perf_counter()
    if isinstance(eng, LocalEngine):
        load_model(bundle)
    else:
        eng.client.run(load_model, bundle)
    loading = time.perf_counter() - start
    cpu_before = _cpu_seconds(eng)
    start = time.perf_counter()
    n = sum(eng.map(how, tasks, shared))
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds(eng) - cpu_before
    scores = pd.read_parquet(out).sort_values("call_id", ignore_index=True)
    shutil.rmtree(out, ignore_errors=True)
    return {**_row(label, n, seconds, cpu), "model_load_s": loading, "tasks": len(tasks)}, scores


def _cpu_seconds(eng) -> float:
    """CPU seconds used so far: by the cluster's worker processes, or by this process."""
    if isinstance(eng, LocalEngine):
        return time.process_time()
    return sum(eng.client.run(_process_cpu_seconds).values())


def _process_cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def _score_plain(task, bundle, out_dir, keep, params, columns=None) -> int:
    """:func:`score_partition` as it was: the pyfunc's own ``predict`` (MLflow's schema enforcement
    rebuilds every ``Any`` column value by value)."""
    import pyarrow.parquet as pq

    index, path, groups = task
    frame = pq.ParquetFile(path).read_row_groups(groups, columns=columns).to_pandas()
    scored = load_model(bundle).predict(frame, params=params or None).reset_index(drop=True)
    for column in reversed(keep):
        scored.insert(0, column, frame[column].to_numpy())
    scored.to_parquet(Path(out_dir) / f"part-{index:05d}.parquet", index=False)
    return len(scored)


def _saved_bundle(result, work: Path) -> ModelBundle:
    """The scorer saved as the pyfunc would be, then bundled as the batch scorer sends it."""
    import mlflow

    from disposition.pyfunc_model import RemoteClosureModel, request_signature

    shutil.rmtree(work, ignore_errors=True)
    scorer = result.scorer
    folder = scorer.save(work / "scorer")
    columns = scorer.required_columns
    signature = request_signature(result.example, columns, "call_time", scorer.features.categorical)
    mlflow.pyfunc.save_model(
        str(work / "pyfunc"),
        python_model=RemoteClosureModel(),
        artifacts={"scorer": str(folder)},
        signature=signature,
    )
    return bundle_of(work / "pyfunc")


def _peak_rss_gib() -> float:
    """Peak resident memory of this (worker) process so far, GiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return max(peak, psutil.Process().memory_info().rss / 1024**3)


def _page(  # keyword-only: values of like kinds, easy to pass in the wrong order
    *,
    data,
    forecast,
    calls,
    notes,
    peaks,
    client_peak,
    startup,
    load_before,
    load_after,
    n_origins,
    horizon,
    n_workers,
    memory_limit,
    load_middle=None,
    step=28,
    series_per_task=None,
) -> str:
    """The results page; ``forecast`` or ``calls`` None: that section is a placeholder that
    :func:`_kept_forecasting` / :func:`_kept_calls` replace with the committed one."""
    if load_middle is None:
        when = f"{load_before:.1f} before and {load_after:.1f} after"
    else:
        when = (
            f"{load_before:.1f} before, {load_middle:.1f} between the backtests and the call-level part, "
            f"{load_after:.1f} after"
        )
    lines = [
        "# engine=local vs engine=dask (2-worker LocalCluster), same run",
        "",
        "Produced by `python -m experiments.bench benchmark=dask_scale`, logged to the MLflow experiment",
        "`benchmark-dask_scale`. Wall-time ratios are local / dask measured one after the other in this run.",
        "",
        f"**Machine and load.** {os.cpu_count()} cores; load average {when}. Above {os.cpu_count()}, "
        "other work shared the cores (this machine is shared by several engineers), so every wall time "
        "and ratio here is noisy; CPU seconds depend less on the load.",
        "",
    ]
    if forecast is None:
        lines += ["## Forecasting backtests", "", "(kept from the committed page)", ""]
    else:
        lines += _forecast_section(
            data, forecast, startup, n_origins, horizon, step, series_per_task, n_workers, memory_limit
        )
    if calls is None:
        lines += [
            "## Call level: out-of-core training and batch scoring",
            "",
            "(kept from the committed page)",
            "",
        ]
    else:
        lines += _calls_section(calls, notes)
    lines += [
        "## Memory",
        "",
        "Peak resident memory per worker process (GiB, over this run): "
        + ", ".join(f"{v:.2f}" for v in peaks.values())
        + f"; the job's own process: {client_peak:.2f} GiB (it also ran the local fits).",
    ]
    return "\n".join(lines) + "\n"


def _forecast_section(data, forecast, startup, n_origins, horizon, step, per_task, n_workers, memory_limit):
    years = data["ds"].nunique() / 365.25
    most = int(forecast["series"].max())
    fewer = forecast[forecast["series"] < most]
    fewer_note = "".join(
        f"; {r.model.split(' (')[0]} on {r.series} (its first {r.series // 4} areas: the smaller ones)"
        for r in fewer.itertuples()
    )
    lines = [
        "## Forecasting backtests",
        "",
        f"Measured size: {most} series x {years:.1f} years{fewer_note}, {n_origins} origins every {step} "
        f"days, {horizon}-day horizon ({len(data):,} rows for {most} series); tasks of {per_task} series "
        f"(per series) or whole keys up to {per_task} series (per key). Issue target: "
        f"{TARGET_SERIES:,} series x 5 years, 12 origins, 84 days: **not run** at that size (about "
        f"{TARGET_SERIES // most}x the series; it would not fit the time available on this shared machine): "
        "extrapolated from the measured tasks below. Per-series models are the toolkit's own "
        "configurations (conf/model/glm.yaml, ets.yaml, arima.yaml); the LightGBM rows use "
        "conf/model/lightgbm.yaml's defaults with fewer trees (benchmark.params.lightgbm_estimators). "
        f"Cluster start-up: {startup:.1f} s ({n_workers} workers, {memory_limit} each), not included below.",
        "",
        "| model | series | local s (2 threads) | local s (1 thread) | dask s | local / dask | "
        "local 1 thread / dask | identical table | MASE local / dask | tasks | sum of task s | "
        "longest task s | fixed s | worker peak GiB so far | extrapolated s at 4 / 8 / 16 workers |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in forecast.itertuples():
        single = f"{r.local_1_thread_s:.1f}" if np.isfinite(r.local_1_thread_s) else "-"
        single_ratio = f"{r.ratio_1_thread:.2f}" if np.isfinite(r.ratio_1_thread) else "-"
        lines.append(
            f"| {r.model} | {r.series} | {r.local_s:.1f} | {single} | {r.dask_s:.1f} | {r.ratio:.2f} | "
            f"{single_ratio} | {'yes' if r.identical else '**NO**'} | "
            f"{r.mase_local:.4f} / {r.mase_dask:.4f} | {r.tasks} | {r.task_s_sum:.1f} | {r.task_s_max:.1f} | "
            f"{r.fixed_s:.1f} | {r.worker_peak_gib:.2f} | {r.extrapolated_4_workers_s:.1f} / "
            f"{r.extrapolated_8_workers_s:.1f} / {r.extrapolated_16_workers_s:.1f} |"
        )
    lines += [
        "",
        "CPU seconds, which the other work on the machine changes less than wall times: the 1-thread "
        "local run (this process) against the cluster run (both workers and this process). On 2 free "
        "cores, with the work split evenly, the cluster would take about its CPU seconds / 2 plus the "
        "fixed cost above, and the loop about its CPU seconds (1 thread).",
        "",
        "| model | local CPU s (1 thread) | dask CPU s (workers + here) | dask / local CPU | "
        "local / dask on 2 free cores (estimate) |",
        "|---|---|---|---|---|",
    ]
    for r in forecast.itertuples():
        estimate = r.local_1_thread_cpu_s / (r.dask_cpu_s / 2 + r.fixed_s)
        lines.append(
            f"| {r.model} | {r.local_1_thread_cpu_s:.1f} | {r.dask_cpu_s:.1f} | "
            f"{r.dask_cpu_s / r.local_1_thread_cpu_s:.2f} | {estimate:.2f} |"
        )
    header = " / ".join(str(n) for n in EXTRAPOLATED_WORKERS)
    lines += [
        "",
        "Per-series models (ETS, ARIMA, GLM) fit and forecast with one thread of every thread pool, here "
        "as on a worker (Dask's nanny sets OMP/MKL/OPENBLAS_NUM_THREADS=1). Until a9a0835 only BLAS was "
        "capped here: the GLM's scikit-learn loss ran two OpenMP threads that spun against other work, "
        "which made the loop, not the cluster, the slow side of the earlier pages' GLM ratio (8.88 at "
        "6b4cff3). The global LightGBM's configured 2 threads are used here; on the cluster each worker's "
        "fits use 1, so the two workers' fits do not fight over the 2 cores; the 1-thread column is the "
        "same backtest here with 1 thread (identical table, checked), the fairer baseline when the "
        "machine is loaded.",
        "",
        f"### Extrapolated to {TARGET_SERIES:,} series",
        "",
        f"From each row's measured tasks, with k = {TARGET_SERIES:,} / series. Per-series and per-key "
        f"models: tasks of {per_task} series (or whole keys) at that size (each looks its series up in "
        "the history split once by chunk, `forecasting.backtest.split_by_chunk`: before that, every task "
        "filtered the whole history, about 17 ms a task at 140 series and load 5, which at 10,000 series "
        "would have been about 1.2 s a task, more than fitting 20 series of ETS or the GLM); the global "
        "model: the same "
        f"{n_origins} tasks (origins), each k times longer; the work (sum of task s) grows k times, the "
        "longest task as its series. The fixed cost (scheduling, splitting and "
        "sending the history, gathering the folds) is taken k times (an upper estimate: part of it is per "
        "run). dask s at N workers = max(sum of task s / N, longest task) + fixed; the local loop: k x "
        "its 1-thread time. Linear in the series: it assumes workers as fast as these two and ignores "
        "memory pressure; it is an estimate, not a measurement. Every worker holds the whole history "
        "(column 2).",
        "",
        f"| model | k | history GiB on each worker | task size at {TARGET_SERIES:,} series | "
        f"local s (1 thread) | dask s at {header} workers | local / dask, 2 workers |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in forecast.itertuples():
        k = TARGET_SERIES / r.series
        walls = " / ".join(f"{getattr(r, f'target_{n}_workers_s'):,.0f}" for n in EXTRAPOLATED_WORKERS)
        size = f"{per_task} series (or whole keys)" if r.chunked else f"all {TARGET_SERIES:,} series"
        size = size if per_task else f"all {TARGET_SERIES:,} series"
        lines.append(
            f"| {r.model} | {k:.0f} | {r.target_history_gib:.2f} | {size} | {r.target_local_s:,.0f} | "
            f"{walls} | {r.target_local_s / r.target_2_workers_s:.2f} |"
        )
    by_key = forecast.set_index("key")
    per_series = [by_key.loc[k] for k in PER_SERIES if k in by_key.index]
    one_model, per_key = by_key.loc["lightgbm"], by_key.loc["lightgbm_per_key"]
    lines += [
        "",
        "Targets (measured at the sizes above; the issue's are at 10,000 series, where only the "
        "extrapolation speaks):",
        *(
            f"- {r.model.split(' (')[0]} (per series, {r.series} series), local / dask >= 1.6: "
            f"{_verdict(r.ratio, 1.6)}; extrapolated to {TARGET_SERIES:,} series: "
            f"{r.target_local_s / r.target_2_workers_s:.2f};"
            for r in per_series
        ),
        f"- one global LightGBM, local / dask >= 0.9: {_verdict(one_model.ratio, 0.9)} "
        f"(against the 1-thread local run: {one_model.ratio_1_thread:.2f}); extrapolated: "
        f"{one_model.target_local_s / one_model.target_2_workers_s:.2f};",
        f"- LightGBM per key (a different model: one per area), local / dask: {per_key.ratio:.2f} "
        f"(1-thread local: {per_key.ratio_1_thread:.2f}); MASE {per_key.mase_local:.4f} against "
        f"{one_model.mase_local:.4f} for the one global model on these origins (not a model choice: "
        "choose on a backtest of your own series);",
        "- identical tables local / dask: "
        + ("every row" if forecast["identical"].all() else "**not every row** (see the table)")
        + "; peak memory per worker: the table's column and the Memory section.",
        "",
        "Extrapolation at this size (last column of the first table): the same formula with k = 1. A "
        "global model's tasks are origins (12 here), so beyond 12 workers it cannot gain; per-key tasks "
        "are origins x keys.",
        "",
    ]
    return lines


def _calls_section(calls: pd.DataFrame, notes: dict) -> list[str]:
    lines = [
        "## Call level: out-of-core training and batch scoring",
        "",
        f"Measured size: training on {notes['n_calls']:,} synthetic calls (the committed 150,000, repeated "
        f"with later dates) in Parquet files; scoring {notes['n_scored']:,} calls. Issue target: 50 M "
        "calls: **not run**.",
        "",
        f"- AUC on the test window: out of core {notes['auc_dask']:.4f}, plain LightGBM on the same training "
        f"window in one process {notes['auc_local']:.4f} (difference {notes['auc_difference']:.4f}; target "
        "within 0.002 of a local fit). The issue's comparison (a local fit on a 2 M sample) is not made.",
        f"- threshold {notes['threshold']:.4f}: {notes['test_share']:.1%} of test calls recommended, "
        f"under-triage {notes['test_under_triage']:.2%}",
        "- scores: local engine and dask "
        + ("identical" if notes["same_scores_local_dask"] else "**DIFFER**")
        + "; column-wise schema enforcement and MLflow's own "
        + ("identical" if notes["same_scores_columnar_plain"] else "**DIFFER**")
        + " (same calls).",
        "",
        "| step | calls | seconds | calls / s | CPU s | calls / CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for r in calls.itertuples():
        cpu = f"{r.cpu_s:.1f}" if np.isfinite(r.cpu_s) else "-"
        per_cpu = f"{r.calls_per_cpu_s:,.0f}" if np.isfinite(r.calls_per_cpu_s) else "-"
        lines.append(
            f"| {r.step} | {r.calls:,} | {r.seconds:.1f} | {r.calls_per_s:,.0f} | {cpu} | {per_cpu} |"
        )
    dask_rows = calls[calls["step"].str.contains("dask") & calls["step"].str.startswith("batch")]
    lines += [
        "",
        "CPU s: the worker processes' CPU time on the cluster, this process's (all its threads) on the "
        "local engine. With 2 dedicated cores, 2 workers could score at most about 2 x calls / CPU s. "
        "Scoring rows exclude loading the model, once per worker process and job (here "
        + ", ".join(f"{v:.1f}" for v in calls["model_load_s"].dropna())
        + f" s), and use tasks of about {SCORE_ROWS_PER_TASK:,} calls (Parquet row groups of 100,000; "
        "tasks: " + ", ".join(str(int(v)) for v in calls["tasks"].dropna()) + ").",
        "",
        "Where the time goes (CPU microseconds a call, 200,000 calls in this process, one LightGBM "
        "thread): the scorer (request checks, encoding, LightGBM, calibration, rules, thresholds, "
        f"output) {notes['large_us_scorer']:.1f}, of which LightGBM's own `predict` "
        f"{notes['large_us_lightgbm']:.1f}, for 200 trees x 31 leaves"
        + (
            f"; {notes['small_us_scorer']:.1f} and {notes['small_us_lightgbm']:.1f} for the small model"
            if "small_us_scorer" in notes
            else ""
        )
        + ". The rest of a task (reading and writing Parquet, the schema) is the difference to the "
        "CPU s per call above. With LightGBM alone at that speed, 2 workers cannot score the large model "
        f"faster than about {2e6 / notes['large_us_lightgbm']:,.0f} calls/s on 2 dedicated cores.",
        "",
        "Batch scoring target: 300,000 calls/s on 2 workers (without reasons): "
        + "; ".join(
            f"{r.step}: {_verdict(r.calls_per_s, 300_000, '{:,.0f} calls/s')}, "
            f"2 x per CPU s {2 * r.calls_per_cpu_s:,.0f}"
            for r in dask_rows.itertuples()
        )
        + ".",
        "",
    ]
    return lines


def _kept_forecasting(markdown: str) -> str:
    """``markdown`` with its forecasting section replaced by the committed page's, which says so."""
    return _kept_section(markdown, "## Forecasting backtests", "## Call level", "forecasting", "call-level")


def _kept_calls(markdown: str) -> str:
    """``markdown`` with its call-level section replaced by the committed page's, which says so."""
    return _kept_section(markdown, "## Call level", "## Memory", "calls", "forecasting")


def _kept_section(markdown: str, start: str, end: str, switch: str, ran: str) -> str:
    """``markdown`` with the section from ``start`` to ``end`` taken from the committed page, with a
    note naming the commit it comes from (kept as it is when it already has one)."""
    committed = (RESULTS / "dask_scale.md").read_text()
    begin = committed.index(start)
    heading = committed[begin : committed.index("\n", begin)]
    kept = committed[begin : committed.index(end, begin)]
    if "Not re-run in this run" not in kept:  # kept from an earlier run already: its note names that run
        commit = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", "experiments/results/dask_scale.md"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        note = (
            f"{heading}\n\nNot re-run in this run (`benchmark.params.{switch}=false`, only the {ran} "
            f"part ran): the section below is the one committed at {commit or 'the previous commit'}, from "
            "its own run and load; the machine and load line above is this run's."
        )
        kept = kept.replace(heading, note, 1)
    first = markdown.index(start)
    return markdown[:first] + kept + markdown[markdown.index(end, first) :]


def _verdict(value: float, target: float, shown: str = "{:.2f}") -> str:
    """``1.23: met`` or ``0.65: missed by 0.25``."""
    text = shown.format(value)
    if value >= target:
        return f"{text}: met"
    return f"{text}: **missed** by {shown.format(target - value)}"
