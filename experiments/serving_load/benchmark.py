"""Load on the served disposition model: 5,000 single-call requests, 16 at a time, on loopback.

    python -m experiments.bench benchmark=serving_load   # or: make serving-load

Serves ``disposition-remote-closure@champion`` with ``mlflow models serve --env-manager local``
(as docs/serving.md says), sends each request as one call in ``dataframe_records`` as a dispatch
system would while a call is in progress, from 16 client threads, and reports p50/p99 latency,
throughput and the error count (config: conf/benchmark/serving_load.yaml). The model's store is
``tracking_uri`` / ``MLFLOW_TRACKING_URI``, else this folder's own ``mlruns``, where a missing
model is first trained by ``disposition.train`` with quicker settings. The benchmark run itself is
logged by the harness to its own store.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import requests
from omegaconf import OmegaConf

from disposition.synthetic_calls import OUTCOME_COLUMNS, sample_calls
from experiments.harness import BenchmarkReport
from experiments.model_store import DISPOSITION, ensure_champions, model_store
from mlops.integrity import verify_model

NAME = "serving_load"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SYNTHETIC = ROOT / "data" / "synthetic"
MODEL = DISPOSITION
VENV_BIN = Path(sys.executable).parent


def request_bodies(n: int, seed: int) -> list[str]:
    """``n`` one-call JSON bodies drawn from the synthetic world (no outcome columns)."""
    ratio = OmegaConf.to_container(OmegaConf.load(SYNTHETIC / "world.yaml").world.age_rate_ratio)
    counts = pd.read_csv(SYNTHETIC / "daily_counts.csv")
    population = pd.read_csv(SYNTHETIC / "population.csv")
    calls = sample_calls(counts, population, ratio, n, seed=seed).calls
    calls = calls.drop(columns=[c for c in OUTCOME_COLUMNS if c in calls.columns])
    records = json.loads(calls.to_json(orient="records", date_format="iso"))
    return [json.dumps({"dataframe_records": [record]}) for record in records]


def serve(tracking_uri: str, port: int, workers: int, log: Path) -> subprocess.Popen:
    """``mlflow models serve`` in a session of its own (stopped with its workers); waits for /ping.

    It serves the local copy that passed the integrity check (:func:`mlops.integrity.verify_model`),
    so what was checked against the registration manifest is what answers.
    """
    _, verified = verify_model(f"models:/{MODEL}@champion", tracking_uri, log.parent / "verified-model")
    command = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", str(verified)]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env['PATH']}"  # `mlflow models serve` runs uvicorn by name
    process = subprocess.Popen(
        command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).ok:
                return process
        except requests.RequestException:
            time.sleep(0.3)
    os.killpg(process.pid, signal.SIGTERM)
    raise RuntimeError(f"server did not start:\n{log.read_text()[-2000:]}")


def run_load(url: str, bodies: list[str], concurrency: int) -> tuple[np.ndarray, list[str], float]:
    """Send every body once from ``concurrency`` threads; latencies (s), error descriptions, wall time."""
    local = threading.local()
    headers = {"Content-Type": "application/json"}

    def send(body: str) -> tuple[float, str | None]:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session  # one keep-alive connection per thread, as a client pool would
        start = time.perf_counter()
        try:
            response = session.post(url, data=body, headers=headers, timeout=30)
            ok = response.status_code == 200
            error = None if ok else f"HTTP {response.status_code}: {response.text[:200]}"
        except requests.RequestException as exc:
            error = repr(exc)
        return time.perf_counter() - start, error

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        outcomes = list(pool.map(send, bodies))
    wall = time.perf_counter() - started
    return np.array([t for t, _ in outcomes]), [e for _, e in outcomes if e], wall


def run(
    workdir: Path,
    tracking_uri: str | None,
    n_requests: int,
    concurrency: int,
    workers: int,
    warmup: int,
    seed: int,
) -> BenchmarkReport:
    # Not MLFLOW_TRACKING_URI here: the harness has pointed it at its own store. The config reads
    # the variable when the command starts (${oc.env:MLFLOW_TRACKING_URI,null}).
    tracking_uri, own_dir = model_store(tracking_uri, HERE / "mlruns")
    version = ensure_champions(tracking_uri, own_dir, [MODEL])[MODEL]
    load = os.getloadavg()[0]
    bodies = request_bodies(n_requests + warmup, seed)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = workdir / "server.log"
    process = serve(tracking_uri, port, workers, log)
    try:
        url = f"http://127.0.0.1:{port}/invocations"
        run_load(url, bodies[:warmup], concurrency)  # warm-up: imports, SHAP explainer, connections
        latencies, errors, wall = run_load(url, bodies[warmup:], concurrency)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    ms = latencies * 1000
    rows = [
        ("requests", f"{len(latencies):,}"),
        ("concurrency (client threads)", str(concurrency)),
        ("errors", str(len(errors))),
        ("throughput", f"{len(latencies) / wall:.0f} requests/s"),
        ("latency p50", f"{np.percentile(ms, 50):.1f} ms"),
        ("latency p90", f"{np.percentile(ms, 90):.1f} ms"),
        ("latency p99", f"{np.percentile(ms, 99):.1f} ms"),
        ("latency max", f"{ms.max():.1f} ms"),
        ("wall time", f"{wall:.1f} s"),
    ]
    table = "\n".join(["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
    text = f"""# Load on the served disposition model

Produced by `python -m experiments.bench benchmark={NAME}` (or `make serving-load`), logged to the
MLflow experiment `benchmark-{NAME}`, run on
{time.strftime("%Y-%m-%d")}: `{MODEL}@champion` (v{version}) served by `mlflow models serve
--env-manager local -w {workers}` on loopback; each request is one call (`dataframe_records`: the
signature's 14 columns and `call_id`) with the default `reasons=auto` (exact TreeSHAP reasons for
the call), from {concurrency} Python threads with keep-alive connections, after {warmup} warm-up requests.
Machine: {os.cpu_count()} cores, Python {platform.python_version()}, load average {load:.1f} before the
run (other work shared the machine); the client shares the cores with the server, so the server
alone would do somewhat better.

{table}
"""
    if errors:
        text += "\nFirst errors:\n\n" + "\n".join(f"- {e}" for e in errors[:5]) + "\n"
    metrics = {
        "requests": len(latencies),
        "errors": len(errors),
        "requests_per_second": len(latencies) / wall,
        "latency_p50_ms": np.percentile(ms, 50),
        "latency_p90_ms": np.percentile(ms, 90),
        "latency_p99_ms": np.percentile(ms, 99),
        "latency_max_ms": ms.max(),
        "wall_seconds": wall,
        "load_average_before": load,
    }
    return BenchmarkReport(markdown=text, metrics=metrics)
