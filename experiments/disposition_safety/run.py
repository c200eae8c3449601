"""Does the deployed threshold hold on held-out calls? The issue 12 targets on the synthetic world.

For each seed, the synthetic call generator (conf/disposition_generate.yaml, as committed) draws a
default-size set of calls; the default training job (conf/disposition.yaml: temporal split,
Learn-then-Test threshold on the calibration window) runs on it, and the untouched test window is
read back from the run's metrics and subgroup table:

- the test window's one-sided Clopper-Pearson bound (at 1 - safety.delta) of under-triage among
  recommended calls, overall and in every subgroup level that received recommendations, against
  the limit;
- the share of all test calls recommended (target >= 15 %);
- closure at the DEPLOYED threshold as a ratio to the oracle's closure at the oracle's own
  Learn-then-Test threshold, chosen the same way on the same calibration window and applied to the
  same test calls (target >= 0.90).

Run: ``python -m experiments.bench benchmark=disposition_safety`` (conf/benchmark/disposition_safety.yaml).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from experiments.harness import ROOT, BenchmarkReport

SHARE_TARGET = 0.15
RATIO_TARGET = 0.90
CONFIGURED = ("age_band", "sex", "category")


def _calls(workdir: Path, seed: int, n_calls: int) -> Path:
    from disposition.generate import generate

    cfg = OmegaConf.load(ROOT / "conf" / "disposition_generate.yaml")
    for key in ("counts_path", "population_path", "world_path"):
        cfg[key] = str(ROOT / cfg[key])
    cfg.seed, cfg.n_calls = int(seed), int(n_calls)
    cfg.output_path = str(workdir / f"calls_seed{seed}.parquet")
    return generate(cfg)["calls"]


def _train(
    workdir: Path, path: Path, seed: int, overrides: Sequence[str]
) -> tuple[dict, pd.DataFrame, float]:
    """The training job's command line, in a process of its own (Hydra owns this one)."""
    out = workdir / f"run_seed{seed}"
    command = [sys.executable, "-m", "disposition.train", f"calls.path={path}"]
    command += [f"tracking.store_dir={workdir / f'store_seed{seed}'}", f"hydra.run.dir={out}", *overrides]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (workdir / f"train_seed{seed}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"training on seed {seed} failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return metrics, pd.read_csv(out / "subgroups.csv"), seconds


def run(
    workdir: Path, seeds: Sequence[int], n_calls: int, limit: float, overrides: Sequence[str] = ()
) -> BenchmarkReport:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # LightGBM threads stop spinning on a shared machine
    rows, levels = [], []
    for seed in seeds:
        path = _calls(workdir, seed, n_calls)
        metrics, subgroups, seconds = _train(workdir, path, seed, [f"safety.limit={limit}", *overrides])
        # The target covers the configured subgroups (calls.subgroups: age band, sex, category);
        # time of day is derived from the call time and reported beside them.
        served = subgroups[(subgroups["recommended"] > 0) & subgroups["group"].isin(CONFIGURED)]
        above = served[served["upper_bound"] > limit]
        times = subgroups[(subgroups["recommended"] > 0) & ~subgroups["group"].isin(CONFIGURED)]
        rows.append(
            {
                "seed": seed,
                "test recommended": int(metrics["test_deployed_n_recommended"]),
                "test unsafe": int(metrics["test_deployed_n_unsafe"]),
                "test under-triage": metrics["test_deployed_under_triage"],
                "test bound": metrics["test_deployed_upper_bound"],
                "closure share": metrics["test_deployed_share"],
                "oracle closure share": metrics.get("oracle_test_deployed_share", np.nan),
                "ratio to oracle": metrics.get("deployed_share_ratio_to_oracle", np.nan),
                "oracle test bound": metrics.get("oracle_test_deployed_upper_bound", np.nan),
                "levels served": len(served),
                "levels not served": int(
                    ((subgroups["recommended"] == 0) & subgroups["group"].isin(CONFIGURED)).sum()
                ),
                "levels above limit": len(above),
                "worst level": (
                    f"{served.loc[served['upper_bound'].idxmax(), 'group']}="
                    f"{served.loc[served['upper_bound'].idxmax(), 'level']}"
                    if len(served)
                    else ""
                ),
                "worst level bound": served["upper_bound"].max() if len(served) else np.nan,
                "time-of-day levels above limit": int((times["upper_bound"] > limit).sum()),
                "higher than rest": ", ".join(
                    f"{r.group}={r.level}" for r in subgroups[subgroups["higher_than_rest"]].itertuples()
                ),
                "train seconds": seconds,
            }
        )
        levels.append(subgroups.assign(seed=seed))
        print(f"seed {seed}: {rows[-1]}", flush=True)
    table = pd.DataFrame(rows)
    by_level = pd.concat(levels, ignore_index=True)
    return _report(table, by_level, seeds, n_calls, limit, overrides)


def _joint(overrides: Sequence[str]) -> bool:
    return "safety.subgroup_control=joint" in overrides


def _procedure(overrides: Sequence[str]) -> str:
    """The threshold procedure the run used, in words (the default, or the joint control)."""
    if _joint(overrides):
        return (
            "the joint control (disposition/joint_threshold.py): age band, sex and category levels "
            "withheld up front from the training window's out-of-fold probabilities, then one threshold "
            "tested in the overall and every served level at once by the intersection-union test, delta "
            "split over three planned starts (0.6, 0.25, 0.15): family-wise at delta"
        )
    return (
        "Learn-then-Test threshold, confirm_power 0.5, the walk's start planned on the training "
        "window's out-of-fold probabilities (plan_start max_power), a threshold per age band, sex and "
        "category level (subgroup_control per_level, subgroup_confirm_power 0.2) or the level withheld"
    )


def _level_text(overrides: Sequence[str]) -> str:
    if _joint(overrides):
        return (
            "The configured levels (age band, sex, category) that the plan serves share one threshold "
            "whose joint test covers the overall rate and every served level together (family-wise at "
            "delta 0.05); the others are withheld (no recommendations)."
        )
    return (
        "Each configured level (age band, sex, category) has its own threshold from the same walk "
        "within its calibration calls, or is withheld (no recommendations) when that walk rejects "
        "nothing: a per-level guarantee at delta 0.05 each, not family-wise."
    )


def _fmt(value: float) -> str:
    return "" if not np.isfinite(value) else f"{100 * value:.2f} %"


def _report(table, by_level, seeds, n_calls, limit, overrides) -> BenchmarkReport:
    overall_ok = int((table["test bound"] <= limit).sum())
    # A seed with no recommendations shows nothing in any level: it does not count as met.
    levels_ok = int(((table["levels above limit"] == 0) & (table["levels served"] > 0)).sum())
    share_ok = int((table["closure share"] >= SHARE_TARGET).sum())
    ratio_ok = int((table["ratio to oracle"] >= RATIO_TARGET).sum())
    n = len(table)
    shown = table.copy()
    for column in (
        "test under-triage",
        "test bound",
        "closure share",
        "oracle closure share",
        "oracle test bound",
        "worst level bound",
    ):
        shown[column] = shown[column].map(_fmt)
    shown["ratio to oracle"] = shown["ratio to oracle"].map(lambda v: f"{v:.3f}")
    shown["train seconds"] = shown["train seconds"].map(lambda v: f"{v:.0f}")
    served = by_level[by_level["recommended"] > 0]
    level_summary = (
        served.groupby(["group", "level"])
        .agg(
            seeds=("seed", "nunique"),
            recommended=("recommended", "sum"),
            unsafe=("unsafe_recommended", "sum"),
            above_limit=("upper_bound", lambda b: int((b > limit).sum())),
            worst_bound=("upper_bound", "max"),
        )
        .reset_index()
    )
    level_summary["worst_bound"] = level_summary["worst_bound"].map(_fmt)
    from disposition.report import markdown_table
    from disposition.threshold import required_calls

    def verdict(count: int) -> str:
        return f"{count} of {n} seeds" + (" (met)" if count == n else " (**missed**)")

    lines = [
        "# Disposition safety: does the deployed threshold hold on held-out calls?",
        "",
        f"{n} seeds ({', '.join(map(str, seeds))}) of the synthetic call generator at {n_calls:,} calls each "
        f"(conf/disposition_generate.yaml as committed), each through the default training job "
        f"(conf/disposition.yaml: temporal split 60/20/20, limit {_fmt(limit)}, delta 0.05, "
        f"{_procedure(overrides)}; extra overrides: "
        f"{', '.join(overrides) or 'none'}). Every figure "
        "is on the latest 20 % of calls, which chose nothing. Bounds are one-sided Clopper-Pearson at 95 %. "
        "Produced by `python -m experiments.bench benchmark="
        f"{'disposition_safety_joint' if _joint(overrides) else 'disposition_safety'}`.",
        "",
        "## Targets",
        "",
        f"- Test-window bound within {_fmt(limit)} overall: {verdict(overall_ok)}.",
        f"- ... and in every level of the configured subgroups (age band, sex, category) that received "
        f"recommendations: {verdict(levels_ok)}. Time-of-day levels above the limit, per seed: "
        f"{', '.join(map(str, table['time-of-day levels above limit']))}.",
        f"- Closure share >= {_fmt(SHARE_TARGET)} of test calls: {verdict(share_ok)}; "
        f"mean {_fmt(table['closure share'].mean())}.",
        f"- Closure at the deployed threshold >= {RATIO_TARGET:.2f} of the oracle's (its own LTT threshold "
        f"on the same windows): {verdict(ratio_ok)}; mean ratio {table['ratio to oracle'].mean():.3f}.",
        "",
        "## Per seed",
        "",
        markdown_table(shown),
        "",
        "## Subgroup levels that received recommendations (all seeds)",
        "",
        f"{_level_text(overrides)} A level with fewer than "
        f"{required_calls(limit, 0.05):,} recommended test calls cannot show a {_fmt(limit)} bound even "
        "with no unsafe call. Time of day is not a configured grouping and is not covered.",
        "",
        markdown_table(level_summary),
        "",
    ]
    metrics = {
        "seeds": float(n),
        "overall_bound_met": float(overall_ok),
        "levels_bound_met": float(levels_ok),
        "share_met": float(share_ok),
        "ratio_met": float(ratio_ok),
        "mean_closure_share": float(table["closure share"].mean()),
        "mean_ratio_to_oracle": float(table["ratio to oracle"].mean()),
        "max_test_bound": float(table["test bound"].max()),
    }
    return BenchmarkReport("\n".join(lines), metrics, {"": table, "levels": by_level})
