"""Scale benchmark: train on 2 M synthetic calls, score 1 M through the registered pyfunc.

Run: ``python -m experiments.bench benchmark=disposition_scale``
(config: conf/benchmark/disposition_scale.yaml).

Targets (issue 5): training under 2 minutes, scoring at least 200,000 calls a second, peak memory
under 6 GiB, on 2 cores; AUC within 0.01 of the oracle and closure share at the limit at least
95 % of the oracle's. ``run`` runs each phase in its own process,
``python -m experiments.disposition_scale.benchmark --phase <phase> --workdir <dir>``, so that the
phase's peak memory is its own, and returns the report.
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
import time  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:  # the phases import only what they need, so their peak memory is their own
    from experiments.harness import BenchmarkReport

ROOT = Path(__file__).resolve().parents[2]
NAME = "disposition_scale"
EXACT_CALLS = 20_000  # calls scored with exact reasons (TreeSHAP is about 10x slower)
TARGET_TRAIN_S, TARGET_CALLS_PER_S, TARGET_GIB = 120, 200_000, 6
TARGET_AUC_GAP, TARGET_SHARE_RATIO = 0.01, 0.95
# Issue 12's targets for this benchmark: the held-out test window's one-sided bound within the 1 %
# limit (overall and in every subgroup level that receives recommendations), closure at least 15 %
# of calls, and at the deployed thresholds at least 90 % of the oracle's closure.
TARGET_LIMIT, TARGET_CLOSURE, TARGET_DEPLOYED_RATIO = 0.01, 0.15, 0.90


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


def _world():
    import pandas as pd
    from omegaconf import OmegaConf

    synthetic = ROOT / "data" / "synthetic"
    ratio = OmegaConf.to_container(OmegaConf.load(synthetic / "world.yaml").world.age_rate_ratio)
    return pd.read_csv(synthetic / "daily_counts.csv"), pd.read_csv(synthetic / "population.csv"), ratio


def phase_generate(workdir: Path, train_calls: int, score_calls: int) -> dict:
    from disposition.synthetic_calls import sample_calls

    counts, population, ratio = _world()
    start = time.perf_counter()
    sample_calls(counts, population, ratio, train_calls, seed=1).calls.to_parquet(workdir / "train.parquet")
    sample_calls(counts, population, ratio, score_calls, seed=2).calls.to_parquet(workdir / "score.parquet")
    return {"seconds": time.perf_counter() - start, "peak_gib": _peak_gib()}


def phase_generate_score(workdir: Path, train_calls: int, score_calls: int) -> dict:
    """Only the calls to score (the same seed as :func:`phase_generate`): for a scoring-only run."""
    from disposition.synthetic_calls import sample_calls

    counts, population, ratio = _world()
    start = time.perf_counter()
    sample_calls(counts, population, ratio, score_calls, seed=2).calls.to_parquet(workdir / "score.parquet")
    return {"seconds": time.perf_counter() - start, "peak_gib": _peak_gib()}


def phase_train(workdir: Path, **_) -> dict:
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
    # The score phase scores the version this run registered, champion or not: a model the
    # promotion gate refused (test-window bound above the limit) is still measured.
    (workdir / "registered_version").write_text(result.version)
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
    import mlflow

    tags = mlflow.get_run(result.run_id).data.tags
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_gib": _peak_gib(),
        "model_kind": tags.get("model_kind", "?"),
        "calibration": tags.get("calibration", "?"),
        "promoted": result.promoted,
        "reason": result.reason,
        "flagged": result.flagged,
        "params": result.params,
        "metrics": metrics,
    }


def phase_score(workdir: Path, **_) -> dict:
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    import disposition.scorer
    from disposition.evaluation import SafetySettings
    from disposition.safety import excluded_by_rules
    from mlops.batch_scoring import predict_columnar
    from mlops.integrity import load_verified_model

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'store' / 'mlflow.db'}")
    version = (workdir / "registered_version").read_text().strip()
    model = load_verified_model(f"models:/disposition-remote-closure/{version}")
    calls = pd.read_parquet(workdir / "score.parquet")
    columns = model.metadata.get_input_schema().input_names()
    request = calls[columns]
    # The toolkit was imported before the model was loaded, so the model runs this checkout's
    # scoring code, not the copy registered with it (a scoring-only run measures the code as it is).
    code = Path(disposition.scorer.__file__)
    out = {
        "calls": len(request),
        "scoring_code": str(code.relative_to(ROOT) if code.is_relative_to(ROOT) else code),
    }
    model.predict(request.head(1000))  # warm-up: first call pays for imports and lazy set-up
    # (label, reasons, how): the pyfunc's own predict (MLflow enforces the input schema value by
    # value for columns declared Any), and the column-wise enforcement the batch scorer uses.
    ways = [("auto", "auto", model.predict), ("none", "none", model.predict)]
    ways += [(f"{mode}_columnar", mode, partial(predict_columnar, model)) for mode in ("auto", "none")]
    answers = {}
    for label, mode, predict in ways:
        start, cpu = time.perf_counter(), time.process_time()
        answers[label] = predict(request, params={"reasons": mode})
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        # CPU time (all threads) does not depend on what else the machine runs: one dedicated core
        # needs at most this long, so calls per CPU-second is a floor for two dedicated cores.
        out[label] = {
            "seconds": seconds,
            "calls_per_second": len(request) / seconds,
            "cpu_seconds": cpu,
            "calls_per_cpu_second": len(request) / cpu,
        }
    scored = answers["auto"]
    out["columnar_same"] = bool(
        answers["auto_columnar"].equals(scored) and answers["none_columnar"].equals(answers["none"])
    )
    sample = request.head(EXACT_CALLS)
    start = time.perf_counter()
    model.predict(sample, params={"reasons": "exact"})
    exact = time.perf_counter() - start
    out["exact"] = {"calls": len(sample), "seconds": exact, "calls_per_second": len(sample) / exact}
    out["peak_gib"] = _peak_gib()
    out["stages"] = _stages(model.unwrap_python_model().scorer, request)

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


def _stages(scorer, calls) -> dict[str, float]:
    """CPU microseconds a call of each step of the scorer's ``predict`` (default reasons), run one by
    one on ``calls`` as ``predict`` runs them."""
    import numpy as np

    from disposition.safety import excluded_by_rules

    spent = {}

    def timed(name, work, *args):
        start = time.process_time()
        result = work(*args)
        spent[name] = 1e6 * (time.process_time() - start) / len(calls)
        return result

    timed("request checks", scorer.check_plausible, calls)
    frame = timed("time features", scorer.model_frame, calls)
    encoded = timed("encoding", scorer.model.encode, frame)
    raw = timed("model score", scorer.model.raw_score, encoded)
    timed("calibration", scorer.calibrator.predict, raw)
    excluded, _ = timed("hard rules", excluded_by_rules, frame, scorer.rules)
    timed("per-level thresholds", scorer.call_thresholds, frame)
    timed("reasons", scorer._explain, frame, encoded, np.flatnonzero(~excluded), "auto")
    return spent


def _run_phase(name: str, workdir: Path, train_calls: int, score_calls: int) -> dict:
    """One phase in a process of its own (its peak memory is its own); its JSON answer."""
    command = [sys.executable, "-m", "experiments.disposition_scale.benchmark", "--phase", name]
    command += [
        "--workdir",
        str(workdir),
        "--train-calls",
        str(train_calls),
        "--score-calls",
        str(score_calls),
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    (workdir / f"{name}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"phase {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _count(n: float) -> str:
    """2,000,000 -> "2 M", 400,029 -> "400k"."""
    return f"{n / 1e6:g} M" if n >= 1e6 else f"{n / 1e3:.0f}k"


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


def _load_lines(load: dict) -> list[str]:
    """The machine's load around each phase and the benchmark's own priority (runs without them:
    nothing to say)."""
    if not load.get("phases"):
        return []
    around = ", ".join(f"{name} {a:.1f} -> {b:.1f}" for name, (a, b) in load["phases"].items())
    return [
        f"Machine load (1-minute load average on {os.cpu_count()} cores, before -> after each phase):",
        f"{around}; the benchmark ran at nice {load.get('nice', 0)}.",
    ]


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _ratio(model: float, oracle: float) -> float:
    """NaN when the oracle recommends nothing (a small run at 1 %): no ratio, the target missed."""
    return model / oracle if oracle > 0 else float("nan")


def _share_pair(model: float, oracle: float) -> str:
    return f"{_ratio(model, oracle):.3f} ({100 * model:.2f} % vs {100 * oracle:.2f} %)"


def report(
    gen: dict,
    fit: dict,
    score: dict,
    load: dict,
    train_calls: int,
    score_calls: int,
    note: str | None = None,
) -> BenchmarkReport:
    import pandas as pd

    from experiments.harness import BenchmarkReport

    m, o = fit["metrics"], score["oracle"]
    auto, none, exact = score["auto"], score["none"], score["exact"]
    columnar, columnar_none = score["auto_columnar"], score["none_columnar"]
    # What `auto` gives on a large batch: the lookup table for LightGBM, the model's own exact
    # contributions for the logistic regression (a sum of per-feature terms, no table).
    tree = fit["model_kind"] == "lightgbm"
    auto_reasons = "fast" if tree else "exact, the logistic model's own per-feature terms"
    exact_reasons = "TreeSHAP" if tree else "coefficient x value"
    peak = max(fit["peak_gib"], score["peak_gib"])
    fresh_gap = o["oracle_auc"] - o["auc"]
    fresh_ratio = _ratio(o["at_limit_share"], o["oracle_at_limit_share"])
    fresh = f"{_count(score_calls)} fresh calls"
    checks = {
        "training": fit["seconds"] < TARGET_TRAIN_S,
        "scoring": auto["calls_per_second"] >= TARGET_CALLS_PER_S,
        "scoring_per_cpu": auto["calls_per_cpu_second"] >= TARGET_CALLS_PER_S,
        "scoring_columnar": columnar["calls_per_second"] >= TARGET_CALLS_PER_S,
        "scoring_columnar_per_cpu": columnar["calls_per_cpu_second"] >= TARGET_CALLS_PER_S,
        "memory": peak < TARGET_GIB,
        "auc_test": m["auc_gap_to_oracle"] <= TARGET_AUC_GAP,
        "auc_fresh": fresh_gap <= TARGET_AUC_GAP,
        "share_test": m["at_limit_share_ratio_to_oracle"] >= TARGET_SHARE_RATIO,
        "share_fresh": fresh_ratio >= TARGET_SHARE_RATIO,
        "test_bound": m["test_deployed_upper_bound"] <= TARGET_LIMIT,
        "subgroups": not fit["flagged"],
        "closure": m["test_deployed_share"] >= TARGET_CLOSURE,
        "deployed_ratio": m.get("deployed_share_ratio_to_oracle", float("nan")) >= TARGET_DEPLOYED_RATIO,
    }
    rows = [
        (
            f"Training, {_count(train_calls)} calls (whole `train()`), wall",
            f"< {TARGET_TRAIN_S} s",
            f"{fit['seconds']:.1f} s",
            _verdict(checks["training"]),
        ),
        ("Training, CPU time (all threads)", "", f"{fit['cpu_seconds']:.1f} s", ""),
        (
            f"Scoring {_count(score_calls)} calls through the pyfunc, default output "
            f"(reasons `auto`: {auto_reasons}), wall",
            f">= {TARGET_CALLS_PER_S:,} /s",
            f"{auto['calls_per_second']:,.0f} /s ({auto['seconds']:.2f} s)",
            _verdict(checks["scoring"]),
        ),
        (
            "... per CPU-second (floor for 2 dedicated cores)",
            f">= {TARGET_CALLS_PER_S:,} /s",
            f"{auto['calls_per_cpu_second']:,.0f} /s ({auto['cpu_seconds']:.2f} s CPU)",
            _verdict(checks["scoring_per_cpu"]),
        ),
        (
            "Scoring without reasons (`reasons=none`), wall / per CPU-second",
            "",
            f"{none['calls_per_second']:,.0f} /s / {none['calls_per_cpu_second']:,.0f} /s",
            "",
        ),
        (
            f"Scoring {_count(score_calls)} calls, default output, the input schema enforced column by "
            "column (`mlops.batch_scoring.predict_columnar`, as the batch scorer calls the model), wall",
            f">= {TARGET_CALLS_PER_S:,} /s",
            f"{columnar['calls_per_second']:,.0f} /s ({columnar['seconds']:.2f} s)",
            _verdict(checks["scoring_columnar"]),
        ),
        (
            "... per CPU-second",
            f">= {TARGET_CALLS_PER_S:,} /s",
            f"{columnar['calls_per_cpu_second']:,.0f} /s ({columnar['cpu_seconds']:.2f} s CPU)",
            _verdict(checks["scoring_columnar_per_cpu"]),
        ),
        (
            "... without reasons, wall / per CPU-second",
            "",
            f"{columnar_none['calls_per_second']:,.0f} /s / {columnar_none['calls_per_cpu_second']:,.0f} /s",
            "",
        ),
        (
            f"Scoring with exact reasons ({exact_reasons}, {_count(exact['calls'])} calls), wall",
            "",
            f"{exact['calls_per_second']:,.0f} /s",
            "",
        ),
        ("Peak memory (largest phase)", f"< {TARGET_GIB} GiB", f"{peak:.2f} GiB", _verdict(checks["memory"])),
        (
            f"AUC gap to oracle, test window ({_count(m['test_n'])} calls)",
            f"<= {TARGET_AUC_GAP}",
            f"{m['auc_gap_to_oracle']:.4f} (model {m['test_auc']:.4f}, oracle {m['oracle_auc']:.4f})",
            _verdict(checks["auc_test"]),
        ),
        (
            f"AUC gap to oracle, {fresh}",
            f"<= {TARGET_AUC_GAP}",
            f"{fresh_gap:.4f} (model {o['auc']:.4f}, oracle {o['oracle_auc']:.4f})",
            _verdict(checks["auc_fresh"]),
        ),
        (
            "Closure share at the 1 % limit / oracle's, test window",
            f">= {TARGET_SHARE_RATIO}",
            _share_pair(m["test_at_limit_share"], m["oracle_at_limit_share"]),
            _verdict(checks["share_test"]),
        ),
        (
            f"Closure share at the 1 % limit / oracle's, {fresh}",
            f">= {TARGET_SHARE_RATIO}",
            _share_pair(o["at_limit_share"], o["oracle_at_limit_share"]),
            _verdict(checks["share_fresh"]),
        ),
        (
            "Test-window one-sided 95 % bound of under-triage at the deployed threshold (the promotion gate)",
            f"<= {100 * TARGET_LIMIT:g} %",
            f"{100 * m['test_deployed_upper_bound']:.3f} % ({int(m['test_deployed_n_unsafe']):,} unsafe of "
            f"{int(m['test_deployed_n_recommended']):,} recommended)",
            _verdict(checks["test_bound"]),
        ),
        (
            "Subgroup levels receiving recommendations whose test-window bound is above the limit",
            "none",
            ", ".join(fit["flagged"]) or "none",
            _verdict(checks["subgroups"]),
        ),
        (
            "Closure share at the deployed threshold, test window",
            f">= {100 * TARGET_CLOSURE:g} %",
            f"{100 * m['test_deployed_share']:.2f} %",
            _verdict(checks["closure"]),
        ),
        (
            "Closure at the deployed thresholds / oracle's (each chosen on the calibration window), test",
            f">= {TARGET_DEPLOYED_RATIO}",
            _share_pair(m["test_deployed_share"], m.get("oracle_deployed_share", float("nan"))),
            _verdict(checks["deployed_ratio"]),
        ),
    ]
    table = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    times = {k.removeprefix("time_").removesuffix("_s"): v for k, v in m.items() if k.startswith("time_")}
    breakdown = ", ".join(f"{k} {v:.1f}" for k, v in times.items())
    shown = ("n_estimators", "learning_rate", "num_leaves", "min_child_samples", "C", "penalty")
    tuned = {k: fit["params"][k] for k in shown if k in fit["params"]}
    flagged = ", ".join(fit["flagged"]) if fit["flagged"] else "none"
    lines = [
        "# Disposition scale benchmark: results",
        "",
        f"Produced by `python -m experiments.bench benchmark={NAME}`, logged to the MLflow experiment",
        f"`benchmark-{NAME}` (default configuration, `conf/disposition.yaml`; each phase in its own",
        "process).",
        f"Machine: {_cpu_line()}, Python {platform.python_version()}. Load average {load['before']:.2f}",
        f"before and {load['after']:.2f} after: the machine is shared with other work, so wall-clock",
        "times are pessimistic; CPU time does not depend on the load.",
        *_load_lines(load),
        *([f"Note on this run: {note}"] if note else []),
        "",
        "| Measure | Target | Result | |",
        "|---|---|---|---|",
        table,
        "",
        "Details:",
        "",
        f"- Data: {train_calls:,} synthetic calls to train on (generated in {gen['seconds']:.0f} s,",
        "  not counted),",
        "  split by call time into training 60 % / calibration and threshold 20 % / test 20 %; and",
        f"  {score_calls:,} fresh calls (another seed) to score.",
        "- What chose what: the settings (conf/disposition.yaml: split, safety walk, per-level",
        "  thresholds) were frozen on development seeds 11-16 (disposition_safety_dev.md); on this seed",
        "  the model and its threshold were fitted on the training and calibration windows only, and the",
        "  test window and fresh calls chose nothing. One seed: the bounds below are its uncertainty; the",
        "  spread between seeds is in disposition_safety.md.",
        "- The same targets at 2 M calls over five seeds (this seed and four held out, training phase only):",
        "  disposition_scale_seeds.md.",
        f"- Training breakdown (s): {breakdown} (the rest of the total is MLflow logging and",
        "  registration). `classifier=auto`: LightGBM and the logistic regression are each tuned by a",
        "  time-ordered 3-fold grid search and then compared with their calibrations by time-ordered",
        "  cross-validation, both on the same random 100k-call subsample of the training window",
        "  (`tuning.max_rows`, kept in time order): that is what keeps the choice affordable at 2 M calls.",
        f"  Registered: {fit['model_kind']} ({fit['calibration']} calibration), fitted on "
        + ("at most `classifier.max_rows` (200,000)" if fit["model_kind"].startswith("logistic") else "every")
        + " training call(s);",
        f"  the other family is the baseline (200k calls). Parameters: {tuned}.",
        f"- Threshold (calibration window): P(safe) >= {m['selection_threshold']:.4f}, recommending",
        f"  {100 * m['selection_share']:.2f} % of calls, under-triage",
        f"  {100 * m['selection_under_triage']:.3f} %",
        "  (calibration-window bound, one-sided 95 % Clopper-Pearson,",
        f"  {100 * m['selection_upper_bound']:.3f} %).",
        f"- Test window: {100 * m['test_deployed_share']:.2f} % recommended, under-triage",
        f"  {100 * m['test_deployed_under_triage']:.3f} %",
        f"  (test-window bound, one-sided 95 %, {100 * m['test_deployed_upper_bound']:.3f} %).",
        f"- {_count(score_calls)} fresh calls: {100 * o['deployed_share']:.2f} % recommended, under-triage",
        f"  {100 * o['deployed_under_triage']:.3f} % (bound {100 * o['deployed_upper_bound']:.3f} %).",
        "- Where a call's scoring time goes (CPU microseconds a call, default output, each step of the "
        "scorer's `predict` run alone on the same calls): "
        + ", ".join(f"{name} {value:.2f}" for name, value in score["stages"].items())
        + f"; MLflow's own input-schema enforcement in the pyfunc path about "
        f"{1e6 * (auto['cpu_seconds'] - columnar['cpu_seconds']) / score['calls']:.2f} (the pyfunc's CPU "
        "time less the column-wise path's): for the numbers, declared `Any` so that integers, floats "
        "and numbers sent as text are accepted, MLflow rebuilds each column value by value in Python.",
        f"- Scoring code: this checkout's (`{score['scoring_code']}`), not the model's registered copy;",
        "  the column-wise schema enforcement gave "
        + ("the same answers" if score["columnar_same"] else "**different answers**")
        + " as the pyfunc's own `predict` (every column, both reason modes).",
        f"- Promotion (gate: the test window's one-sided bound within the limit): {fit['reason']}.",
        f"- Flagged subgroups (test window): {flagged}.",
        f"- Peak memory (GiB): generation {gen['peak_gib']:.2f}, training {fit['peak_gib']:.2f},",
        f"  scoring {score['peak_gib']:.2f}.",
    ]
    metrics = {
        "train_seconds": fit["seconds"],
        "train_cpu_seconds": fit["cpu_seconds"],
        "score_calls_per_second": auto["calls_per_second"],
        "score_calls_per_cpu_second": auto["calls_per_cpu_second"],
        "score_no_reasons_calls_per_second": none["calls_per_second"],
        "score_no_reasons_calls_per_cpu_second": none["calls_per_cpu_second"],
        "score_exact_reasons_calls_per_second": exact["calls_per_second"],
        "score_columnar_calls_per_second": columnar["calls_per_second"],
        "score_columnar_calls_per_cpu_second": columnar["calls_per_cpu_second"],
        "score_columnar_no_reasons_calls_per_second": columnar_none["calls_per_second"],
        "score_columnar_no_reasons_calls_per_cpu_second": columnar_none["calls_per_cpu_second"],
        "peak_gib": peak,
        "auc_gap_test": m["auc_gap_to_oracle"],
        "auc_gap_fresh": fresh_gap,
        "share_ratio_test": m["at_limit_share_ratio_to_oracle"],
        "share_ratio_fresh": fresh_ratio,
        "deployed_share_fresh": o["deployed_share"],
        "deployed_under_triage_fresh": o["deployed_under_triage"],
        "deployed_upper_bound_fresh": o["deployed_upper_bound"],
        "promoted": float(fit["promoted"]),
        "targets_missed": float(sum(not ok for ok in checks.values())),
        "test_upper_bound": m["test_deployed_upper_bound"],
        "test_deployed_share": m["test_deployed_share"],
        "flagged_subgroups": float(len(fit["flagged"])),
        "load_average_before": load["before"],
        "load_average_after": load["after"],
        # Everything the training job reported (test window, selection, oracle, timings).
        **{f"train/{key}": value for key, value in m.items()},
    }
    phases = pd.DataFrame(
        [
            {
                "phase": "generate",
                "calls": train_calls + score_calls,
                "wall_seconds": gen["seconds"],
                "peak_gib": gen["peak_gib"],
            },
            {
                "phase": "train",
                "calls": train_calls,
                "wall_seconds": fit["seconds"],
                "cpu_seconds": fit["cpu_seconds"],
                "peak_gib": fit["peak_gib"],
            },
            *(
                {
                    "phase": f"score, reasons={mode}",
                    "calls": score["calls"],
                    "wall_seconds": score[mode]["seconds"],
                    "cpu_seconds": score[mode]["cpu_seconds"],
                    "calls_per_second": score[mode]["calls_per_second"],
                    "calls_per_cpu_second": score[mode]["calls_per_cpu_second"],
                    "peak_gib": score["peak_gib"],
                }
                for mode in ("auto", "none")
            ),
            *(
                {
                    "phase": f"score, reasons={mode}, column-wise schema enforcement",
                    "calls": score["calls"],
                    "wall_seconds": score[f"{mode}_columnar"]["seconds"],
                    "cpu_seconds": score[f"{mode}_columnar"]["cpu_seconds"],
                    "calls_per_second": score[f"{mode}_columnar"]["calls_per_second"],
                    "calls_per_cpu_second": score[f"{mode}_columnar"]["calls_per_cpu_second"],
                    "peak_gib": score["peak_gib"],
                }
                for mode in ("auto", "none")
            ),
            {
                "phase": "score, reasons=exact",
                "calls": exact["calls"],
                "wall_seconds": exact["seconds"],
                "calls_per_second": exact["calls_per_second"],
                "peak_gib": score["peak_gib"],
            },
        ]
    )
    columns = ["phase", "calls", "wall_seconds", "cpu_seconds", "calls_per_second", "calls_per_cpu_second"]
    phases = phases[[*columns, "peak_gib"]].astype({"calls": "Int64"})
    return BenchmarkReport(markdown="\n".join(lines), metrics=metrics, tables={"": phases})


PHASES = {
    "generate": phase_generate,
    "train": phase_train,
    "score": phase_score,
    "generate_score": phase_generate_score,
}


def run(
    workdir: Path,
    train_calls: int,
    score_calls: int,
    note: str | None = None,
    reuse_run: str | None = None,
) -> BenchmarkReport:
    """Generate, train and score, each phase in a process of its own, in ``workdir``.

    ``reuse_run``: the folder of an earlier run of this benchmark; only the calls to score are
    drawn and the scoring phase run, on the model that run registered (its store is copied, never
    changed), and the page keeps that run's generation and training results, saying so.
    """
    workdir = workdir.resolve()  # the phases run from the repository root
    load = {"before": os.getloadavg()[0], "nice": os.nice(0), "phases": {}}
    results = {}
    phases = ["generate", "train", "score"]
    if reuse_run:
        results = _reused(Path(reuse_run).expanduser().resolve(), workdir)
        phases = ["generate_score", "score"]
        reused = (
            f"scoring-only run: the rows on generation, training, memory in training and the test window "
            f"are those of the earlier run {reuse_run} (its load is not on the line above); this run drew "
            "the calls to score again (same seed) and scored them with the model that run registered"
        )
        note = f"{reused}. {note}" if note else reused
    for name in phases:  # the 1-minute load average around each phase: wall times depend on it
        before = os.getloadavg()[0]
        results[name] = _run_phase(name, workdir, train_calls, score_calls)
        load["phases"][name] = (before, os.getloadavg()[0])
    load["after"] = os.getloadavg()[0]
    for data in ("train.parquet", "score.parquet"):  # hundreds of MB; the store and report stay
        (workdir / data).unlink(missing_ok=True)
    return report(
        results["generate"], results["train"], results["score"], load, train_calls, score_calls, note
    )


def _reused(earlier: Path, workdir: Path) -> dict:
    """An earlier run's generation and training answers (each phase log's JSON line), its store
    and registered version copied into ``workdir``."""
    import shutil

    missing = [
        n for n in ("store", "registered_version", "generate.log", "train.log") if not (earlier / n).exists()
    ]
    if missing:
        from mlops.errors import ConfigError

        raise ConfigError(
            f"benchmark.params.reuse_run={earlier}: not a finished run of this benchmark (lacks {missing}); "
            "give a folder under outputs/bench/disposition_scale/"
        )
    shutil.copytree(earlier / "store", workdir / "store")
    shutil.copy2(earlier / "registered_version", workdir / "registered_version")
    results = {}
    for name in ("generate", "train"):
        lines = (earlier / f"{name}.log").read_text().splitlines()
        results[name] = json.loads(next(line for line in reversed(lines) if line.startswith("{")))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="One phase of the disposition scale benchmark.")
    parser.add_argument("--phase", choices=list(PHASES), required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--train-calls", type=int, required=True)
    parser.add_argument("--score-calls", type=int, required=True)
    args = parser.parse_args()
    answer = PHASES[args.phase](args.workdir, train_calls=args.train_calls, score_calls=args.score_calls)
    print(json.dumps(answer, default=float))


if __name__ == "__main__":
    main()
