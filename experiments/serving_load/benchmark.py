"""Load on the served disposition model: 5,000 single-call requests, 16 at a time, on loopback.

    python -m experiments.bench benchmark=serving_load   # or: make serving-load

Serves ``disposition-remote-closure@champion`` with the documented server, ``python -m mlops.serve
models:/disposition-remote-closure@champion --workers 2`` (docs/serving.md: MLflow's scoring app
behind the toolkit's request guard, the model checked against its registration manifest once and
loaded by each worker), sends each request as one call in ``dataframe_records`` as a dispatch
system would while a call is in progress, from 16 client threads, and reports p50/p99 latency,
throughput and the error count (config: conf/benchmark/serving_load.yaml). With ``compare_bare``
bare ``mlflow models serve -w 2`` on the same verified copy runs beside it and the two take turns
under the same requests, to price the guard (the page says what it costs). The model's store is
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
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
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
    """``n`` one-call JSON bodies drawn from the synthetic world: exactly the signature's columns.

    Not ``call_id`` or the outcome columns: the server refuses columns the model does not take.
    """
    ratio = OmegaConf.to_container(OmegaConf.load(SYNTHETIC / "world.yaml").world.age_rate_ratio)
    counts = pd.read_csv(SYNTHETIC / "daily_counts.csv")
    population = pd.read_csv(SYNTHETIC / "population.csv")
    calls = sample_calls(counts, population, ratio, n, seed=seed).calls
    calls = calls.drop(columns=[c for c in [*OUTCOME_COLUMNS, "call_id"] if c in calls.columns])
    records = json.loads(calls.to_json(orient="records", date_format="iso"))
    return [json.dumps({"dataframe_records": [record]}) for record in records]


def serve(tracking_uri: str, port: int, workers: int, log: Path) -> subprocess.Popen:
    """The documented server, ``python -m mlops.serve``, in a session of its own; waits for every worker.

    The command itself downloads the champion and checks it against its registration manifest
    (:func:`mlops.integrity.verify_model`) before any worker starts, so what was checked is what
    answers; a model that fails the check is not served.
    """
    command = [sys.executable, "-m", "mlops.serve", f"models:/{MODEL}@champion"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return _start(command, tracking_uri, port, workers, log)


def serve_bare(tracking_uri: str, port: int, workers: int, log: Path) -> subprocess.Popen:
    """Bare ``mlflow models serve`` on the verified local copy: the same app without the guard.

    Only the price of the guard is measured with it; docs/serving.md says why it is not served so.
    """
    _, verified = verify_model(f"models:/{MODEL}@champion", tracking_uri, log.parent / "verified-model")
    command = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", str(verified)]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
    return _start(command, tracking_uri, port, workers, log)


def _start(command: list[str], tracking_uri: str, port: int, workers: int, log: Path) -> subprocess.Popen:
    """Start ``command`` in a session of its own (stopped with its workers); wait for all workers."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env['PATH']}"  # `mlflow models serve` runs uvicorn by name
    process = subprocess.Popen(
        command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        # /ping answers as soon as one worker is up: the load waits for all of them (uvicorn's line).
        started = log.read_text().count("Application startup complete")
        try:
            if started >= workers and requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).ok:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.3)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
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


@dataclass(frozen=True)
class Measured:
    """One server under the load."""

    latencies_ms: np.ndarray
    errors: list[str]
    wall: float

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.wall

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))


def measure(
    servers: dict[str, Callable[..., subprocess.Popen]],
    tracking_uri: str,
    workers: int,
    workdir: Path,
    bodies: list[str],
    warmup: int,
    concurrency: int,
    rounds: int,
) -> dict[str, Measured]:
    """Start every server (:func:`serve`, :func:`serve_bare`), warm each up, then load them in turns.

    The measured requests go in ``rounds`` chunks; each chunk is sent to every server in turn, so
    that other work on the machine falls on all of them alike instead of on whichever ran second.
    """
    with ExitStack() as stack:
        urls = {}
        for label, start in servers.items():
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            log = workdir / f"server-{len(urls)}.log"
            process = start(tracking_uri, port, workers, log)
            stack.callback(_stop, process)
            urls[label] = f"http://127.0.0.1:{port}/invocations"
        for url in urls.values():
            run_load(url, bodies[:warmup], concurrency)  # warm-up: imports, SHAP explainer, connections
        parts = {label: [] for label in servers}
        for chunk in np.array_split(np.arange(warmup, len(bodies)), rounds):
            for label, url in urls.items():
                parts[label].append(run_load(url, [bodies[i] for i in chunk], concurrency))
    return {
        label: Measured(
            np.concatenate([latencies for latencies, _, _ in done]) * 1000,
            [error for _, errors, _ in done for error in errors],
            sum(wall for _, _, wall in done),
        )
        for label, done in parts.items()
    }


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def guard_cost(guarded: Measured, bare: Measured) -> str:
    """One honest sentence on what the guard costs, from the two servers' measurements."""
    change = guarded.throughput / bare.throughput - 1
    extra_p50, extra_p99 = guarded.p(50) - bare.p(50), guarded.p(99) - bare.p(99)
    figures = (
        f"{guarded.throughput:.0f} against {bare.throughput:.0f} requests/s ({change:+.0%}), "
        f"p50 {extra_p50:+.1f} ms, p99 {extra_p99:+.1f} ms"
    )
    if abs(change) < 0.05:
        verdict = "The guard's cost is below what one run can measure (under 5%, run-to-run noise)"
    elif change < -0.25:
        verdict = "The guard costs a lot of throughput"
    elif change < 0:
        verdict = "The guard costs some throughput"
    else:  # the guard adds work and removes none
        verdict = (
            "The guarded server was faster in this run, which the guard cannot cause: other work "
            "on the machine disturbed the measurement, rerun it on a quiet machine"
        )
    return (
        f"{verdict}: {figures}. It reads each body, parses and checks it in Python and hands MLflow a "
        "re-encoded copy, which MLflow parses again; the model's own work (LightGBM, TreeSHAP reasons) "
        "is the same."
    )


def run(
    workdir: Path,
    tracking_uri: str | None,
    n_requests: int,
    concurrency: int,
    workers: int,
    warmup: int,
    seed: int,
    compare_bare: bool,
    rounds: int,
) -> BenchmarkReport:
    # Not MLFLOW_TRACKING_URI here: the harness has pointed it at its own store. The config reads
    # the variable when the command starts (${oc.env:MLFLOW_TRACKING_URI,null}).
    tracking_uri, own_dir = model_store(tracking_uri, HERE / "mlruns")
    version = ensure_champions(tracking_uri, own_dir, [MODEL])[MODEL]
    load = os.getloadavg()[0]
    bodies = request_bodies(n_requests + warmup, seed)
    starters = {f"`mlops.serve --workers {workers}`": serve}
    if compare_bare:
        starters[f"bare `mlflow models serve -w {workers}`"] = serve_bare
    servers = measure(starters, tracking_uri, workers, workdir, bodies, warmup, concurrency, rounds)
    guarded, *others = servers.values()
    bare = others[0] if others else None
    rows = [
        ("requests", lambda m: f"{len(m.latencies_ms):,}"),
        ("errors", lambda m: str(len(m.errors))),
        ("throughput", lambda m: f"{m.throughput:.0f} requests/s"),
        ("latency p50", lambda m: f"{m.p(50):.1f} ms"),
        ("latency p90", lambda m: f"{m.p(90):.1f} ms"),
        ("latency p99", lambda m: f"{m.p(99):.1f} ms"),
        ("latency max", lambda m: f"{m.latencies_ms.max():.1f} ms"),
        ("wall time", lambda m: f"{m.wall:.1f} s"),
    ]
    header = ["measure", *servers]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [f"| {name} | " + " | ".join(cell(m) for m in servers.values()) + " |" for name, cell in rows]
    table = "\n".join(lines)
    comparison = ""
    if bare is not None:
        paragraph = (
            f"The second column is the same app without the guard (bare `mlflow models serve "
            f"--env-manager local -w {workers}` on the same verified copy), measured only to price the "
            "guard; docs/serving.md says why it is not what we serve. Both servers ran side by side "
            f"and took turns, {n_requests // rounds:,} requests at a time ({rounds} turns each, the "
            f"same requests), so that other work on the machine fell on both alike. "
            f"{guard_cost(guarded, bare)}"
        )
        comparison = "\n" + textwrap.fill(paragraph, width=100, break_on_hyphens=False) + "\n"
    text = f"""# Load on the served disposition model

Produced by `python -m experiments.bench benchmark={NAME}` (or `make serving-load`), logged to the
MLflow experiment `benchmark-{NAME}`, run on
{time.strftime("%Y-%m-%d")}: `{MODEL}@champion` (v{version}) served by the documented server,
`python -m mlops.serve models:/{MODEL}@champion --workers {workers}` (MLflow's scoring app behind the
toolkit's request guard; the model checked against its registration manifest once, then loaded by
each worker), on loopback; each request is one call (`dataframe_records`: the signature's 14
columns) with the default `reasons=auto` (exact TreeSHAP reasons for the call), from {concurrency}
Python threads with keep-alive connections, after {warmup} warm-up requests.
Machine: {os.cpu_count()} cores, Python {platform.python_version()}, load average {load:.1f} before the
run (other work shared the machine); the client shares the cores with the server, so the server
alone would do somewhat better.

{table}
{comparison}"""
    for label, measured in servers.items():
        if measured.errors:
            text += f"\nFirst errors ({label}):\n\n" + "\n".join(f"- {e}" for e in measured.errors[:5]) + "\n"
    metrics = {**_metrics(guarded, ""), "load_average_before": load}
    if bare is not None:
        metrics |= _metrics(bare, "bare_")
    return BenchmarkReport(markdown=text, metrics=metrics)


def _metrics(measured: Measured, prefix: str) -> dict[str, float]:
    numbers = {
        "requests": len(measured.latencies_ms),
        "errors": len(measured.errors),
        "requests_per_second": measured.throughput,
        "latency_p50_ms": measured.p(50),
        "latency_p90_ms": measured.p(90),
        "latency_p99_ms": measured.p(99),
        "latency_max_ms": float(measured.latencies_ms.max()),
        "wall_seconds": measured.wall,
    }
    return {f"{prefix}{key}": value for key, value in numbers.items()}
