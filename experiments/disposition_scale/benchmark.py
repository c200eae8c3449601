"""Scale benchmark: train on 2 M synthetic calls, score 1 M through the registered pyfunc.

Run from the repository root:

    .venv/bin/python experiments/disposition_scale/benchmark.py

Targets (issue 5): training under 2 minutes, scoring at least 200,000 calls a second, peak memory
under 6 GiB, on 2 cores; AUC within 0.01 of the oracle and closure share at the limit at least
95 % of the oracle's. Each phase runs in its own process so its peak memory is its own; results
are written to ``results.md`` beside this file.
"""

from __future__ import annotations

import os

# On a shared machine OpenMP threads that spin while waiting slow LightGBM down several-fold when
# another process holds a core; passive waiting costs nothing on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TRAIN_CALLS = 2_000_000
SCORE_CALLS = 1_000_000


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


def _world():
    import pandas as pd
    from omegaconf import OmegaConf

    synthetic = ROOT / "data" / "synthetic"
    ratio = OmegaConf.to_container(OmegaConf.load(synthetic / "world.yaml").world.age_rate_ratio)
    return pd.read_csv(synthetic / "daily_counts.csv"), pd.read_csv(synthetic / "population.csv"), ratio


def phase_generate(workdir: Path) -> dict:
    from disposition.synthetic_calls import sample_calls

    counts, population, ratio = _world()
    start = time.perf_counter()
    sample_calls(counts, population, ratio, TRAIN_CALLS, seed=1).calls.to_parquet(workdir / "train.parquet")
    sample_calls(counts, population, ratio, SCORE_CALLS, seed=2).calls.to_parquet(workdir / "score.parquet")
    return {"seconds": time.perf_counter() - start, "peak_gib": _peak_gib()}


def phase_train(workdir: Path) -> dict:
    from hydra import compose, initialize_config_dir

    from disposition.pipeline import train

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "disposition",
            [f"calls.path={workdir / 'train.parquet'}", f"tracking.store_dir={workdir / 'store'}"],
        )
    start, cpu = time.perf_counter(), time.process_time()
    result = train(cfg, workdir / "run")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    keep = (
        "time_",
        "test_",
        "selection_",
        "oracle_",
        "auc_gap",
        "at_limit_share_ratio",
        "deployed_share",
        "target_",
    )
    metrics = {k: v for k, v in result.metrics.items() if k.startswith(keep)}
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_gib": _peak_gib(),
        "promoted": result.promoted,
        "reason": result.reason,
        "flagged": result.flagged,
        "params": result.params,
        "metrics": metrics,
    }


def phase_score(workdir: Path) -> dict:
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from disposition.evaluation import SafetySettings
    from disposition.safety import excluded_by_rules

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'store' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/disposition-remote-closure@champion")
    calls = pd.read_parquet(workdir / "score.parquet")
    columns = model.metadata.get_input_schema().input_names()
    request = calls[columns]
    out = {"calls": len(request)}
    model.predict(request.head(1000))  # warm-up: first call pays for imports and lazy set-up
    for mode in ("auto", "none"):
        start, cpu = time.perf_counter(), time.process_time()
        answer = model.predict(request, params={"reasons": mode})
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        # CPU time (all threads) does not depend on what else the machine runs: one dedicated core
        # needs at most this long, so calls per CPU-second is a floor for two dedicated cores.
        out[mode] = {
            "seconds": seconds,
            "calls_per_second": len(request) / seconds,
            "cpu_seconds": cpu,
            "calls_per_cpu_second": len(request) / cpu,
        }
        if mode == "auto":
            scored = answer
    sample = request.head(20_000)
    start = time.perf_counter()
    model.predict(sample, params={"reasons": "exact"})
    exact = time.perf_counter() - start
    out["exact_20k"] = {"seconds": exact, "calls_per_second": len(sample) / exact}
    out["peak_gib"] = _peak_gib()

    # Oracle comparison on the million fresh calls: same world, new seed, never seen in training.
    y = calls["safe_remote"].to_numpy()
    p = scored["p_safe_remote"].to_numpy()
    oracle = calls["p_safe_remote_true"].to_numpy()
    scorer = model.unwrap_python_model().scorer
    excluded, _ = excluded_by_rules(calls, scorer.rules)
    safety = SafetySettings()
    model_limit = safety.choose(p, y == 0, ~excluded)
    oracle_limit = safety.choose(oracle, y == 0, ~excluded)
    deployed = scored["recommend_remote"].to_numpy()
    out["oracle"] = {
        "auc": roc_auc_score(y, p),
        "oracle_auc": roc_auc_score(y, oracle),
        "at_limit_share": model_limit.share,
        "oracle_at_limit_share": oracle_limit.share,
        "deployed_share": float(deployed.mean()),
        "deployed_under_triage": float((y[deployed] == 0).mean()),
        "deployed_upper_bound": float(safety.apply(p, y == 0, deployed, -np.inf).upper_bound),
    }
    return out


def _run_phase(name: str, workdir: Path) -> dict:
    command = [sys.executable, str(Path(__file__)), "--phase", name, "--workdir", str(workdir)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cpu_line() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return f"{os.cpu_count()} x {model}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _share_pair(model: float, oracle: float) -> str:
    return f"{model / oracle:.3f} ({100 * model:.2f} % vs {100 * oracle:.2f} %)"


def write_results(gen: dict, fit: dict, score: dict, load: dict) -> Path:
    m, o = fit["metrics"], score["oracle"]
    auto, none, exact = score["auto"], score["none"], score["exact_20k"]
    peak = max(fit["peak_gib"], score["peak_gib"])
    fresh_gap = o["oracle_auc"] - o["auc"]
    rows = [
        (
            "Training, 2 M calls (whole `train()`), wall",
            "< 120 s",
            f"{fit['seconds']:.1f} s",
            _verdict(fit["seconds"] < 120),
        ),
        ("Training, CPU time (all threads)", "", f"{fit['cpu_seconds']:.1f} s", ""),
        (
            "Scoring 1 M calls through the pyfunc, default output (reasons `auto` = fast), wall",
            ">= 200,000 /s",
            f"{auto['calls_per_second']:,.0f} /s ({auto['seconds']:.2f} s)",
            _verdict(auto["calls_per_second"] >= 200_000),
        ),
        (
            "... per CPU-second (floor for 2 dedicated cores)",
            ">= 200,000 /s",
            f"{auto['calls_per_cpu_second']:,.0f} /s ({auto['cpu_seconds']:.2f} s CPU)",
            _verdict(auto["calls_per_cpu_second"] >= 200_000),
        ),
        (
            "Scoring without reasons (`reasons=none`), wall / per CPU-second",
            "",
            f"{none['calls_per_second']:,.0f} /s / {none['calls_per_cpu_second']:,.0f} /s",
            "",
        ),
        (
            "Scoring with exact TreeSHAP reasons (20k calls), wall",
            "",
            f"{exact['calls_per_second']:,.0f} /s",
            "",
        ),
        ("Peak memory (largest phase)", "< 6 GiB", f"{peak:.2f} GiB", _verdict(peak < 6)),
        (
            "AUC gap to oracle, test window (400k calls)",
            "<= 0.01",
            f"{m['auc_gap_to_oracle']:.4f} (model {m['test_auc']:.4f}, oracle {m['oracle_auc']:.4f})",
            _verdict(m["auc_gap_to_oracle"] <= 0.01),
        ),
        (
            "AUC gap to oracle, 1 M fresh calls",
            "<= 0.01",
            f"{fresh_gap:.4f} (model {o['auc']:.4f}, oracle {o['oracle_auc']:.4f})",
            _verdict(fresh_gap <= 0.01),
        ),
        (
            "Closure share at the 1 % limit / oracle's, test window",
            ">= 0.95",
            _share_pair(m["test_at_limit_share"], m["oracle_at_limit_share"]),
            _verdict(m["at_limit_share_ratio_to_oracle"] >= 0.95),
        ),
        (
            "Closure share at the 1 % limit / oracle's, 1 M fresh calls",
            ">= 0.95",
            _share_pair(o["at_limit_share"], o["oracle_at_limit_share"]),
            _verdict(o["at_limit_share"] / o["oracle_at_limit_share"] >= 0.95),
        ),
    ]
    table = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    times = {k.removeprefix("time_").removesuffix("_s"): v for k, v in m.items() if k.startswith("time_")}
    breakdown = ", ".join(f"{k} {v:.1f}" for k, v in times.items())
    tuned = {
        k: fit["params"][k] for k in ("n_estimators", "learning_rate", "num_leaves", "min_child_samples")
    }
    flagged = ", ".join(fit["flagged"]) if fit["flagged"] else "none"
    lines = [
        "# Disposition scale benchmark: results",
        "",
        "Command: `.venv/bin/python experiments/disposition_scale/benchmark.py` (default configuration,",
        "`conf/disposition.yaml`; each phase in its own process).",
        f"Machine: {_cpu_line()}, Python {platform.python_version()}. Load average {load['before']:.2f}",
        f"before and {load['after']:.2f} after: the machine is shared with other work, so wall-clock",
        "times are pessimistic; CPU time does not depend on the load.",
        "",
        "| Measure | Target | Result | |",
        "|---|---|---|---|",
        table,
        "",
        "Details:",
        "",
        f"- Data: {TRAIN_CALLS:,} synthetic calls to train on (generated in {gen['seconds']:.0f} s,",
        "  not counted),",
        "  split by call time into training 60 % / calibration and threshold 20 % / test 20 %; and",
        f"  {SCORE_CALLS:,} fresh calls (another seed) to score.",
        f"- Training breakdown (s): {breakdown} (the rest of the total is MLflow logging and",
        "  registration). Tuning: time-ordered 3-fold grid search on a 100k-call subsample; the final",
        "  LightGBM fit uses every training call; the logistic baseline 200k calls.",
        f"  Chosen: {tuned}.",
        f"- Threshold (calibration window): P(safe) >= {m['selection_threshold']:.4f}, recommending",
        f"  {100 * m['selection_share']:.2f} % of calls, under-triage",
        f"  {100 * m['selection_under_triage']:.3f} %",
        f"  (upper end of the 95 % Clopper-Pearson interval {100 * m['selection_upper_bound']:.3f} %).",
        f"- Test window: {100 * m['test_deployed_share']:.2f} % recommended, under-triage",
        f"  {100 * m['test_deployed_under_triage']:.3f} %",
        f"  (bound {100 * m['test_deployed_upper_bound']:.3f} %).",
        f"- 1 M fresh calls: {100 * o['deployed_share']:.2f} % recommended, under-triage",
        f"  {100 * o['deployed_under_triage']:.3f} % (bound {100 * o['deployed_upper_bound']:.3f} %).",
        f"- Promotion: {fit['reason']}.",
        f"- Flagged subgroups (test window): {flagged}.",
        f"- Peak memory (GiB): generation {gen['peak_gib']:.2f}, training {fit['peak_gib']:.2f},",
        f"  scoring {score['peak_gib']:.2f}.",
    ]
    path = HERE / "results.md"
    path.write_text("\n".join(lines) + "\n")
    everything = {"generate": gen, "train": fit, "score": score, "load": load}
    (HERE / "results.json").write_text(json.dumps(everything, indent=2, default=float))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=["generate", "train", "score"])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--from-json", action="store_true", help="rewrite results.md from results.json")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads((HERE / "results.json").read_text())
        print(write_results(saved["generate"], saved["train"], saved["score"], saved["load"]).read_text())
        return
    if args.phase:
        phases = {"generate": phase_generate, "train": phase_train, "score": phase_score}
        print(json.dumps(phases[args.phase](args.workdir), default=float))
        return
    with tempfile.TemporaryDirectory(prefix="disposition-scale-") as tmp:
        workdir = Path(tmp)
        load = {"before": os.getloadavg()[0]}
        gen = _run_phase("generate", workdir)
        fit = _run_phase("train", workdir)
        score = _run_phase("score", workdir)
        load["after"] = os.getloadavg()[0]
    print(write_results(gen, fit, score, load).read_text())


if __name__ == "__main__":
    main()
