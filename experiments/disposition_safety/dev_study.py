"""Development study for the safety threshold, on seeds that the committed benchmark does not use.

Step 1 (``cache``): for each development seed, the committed generator draws calls and the default
training job's own steps (model choice by cross-validation, fit, calibration) run up to the
threshold; the scores, outcomes, hard-rule eligibility and subgroup labels of the calibration and
test windows, the out-of-fold planning probabilities of the training window and the oracle's
probabilities are saved. Step 2 (``evaluate``): threshold procedures are compared on those arrays
in seconds: the fixed sequence started by counts (as before), started where planning data predict
a rejection with probability ``plan_start``, and each with per-level thresholds.

Run: ``python -m experiments.disposition_safety.dev_study cache 11 12 13 14 15`` then
``python -m experiments.disposition_safety.dev_study evaluate 11 12 13 14 15`` (``16:1000000``:
seed 16 at a million calls). The choices frozen
from it are written in experiments/results/disposition_safety_dev.md.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

DEV_DIR = Path(os.environ.get("DISPOSITION_DEV_DIR", "/tmp/disposition_dev"))
N_CALLS = 150_000
# Extra training-job overrides for a cached variant (e.g. another calibration share of the split),
# comma-separated, and the tag its cache files carry: DISPOSITION_DEV_OVERRIDES / DISPOSITION_DEV_TAG.
EXTRA = [o for o in os.environ.get("DISPOSITION_DEV_OVERRIDES", "").split(",") if o]
TAG = os.environ.get("DISPOSITION_DEV_TAG", "")
GROUPS = ("age_band", "sex", "category")


def cache(seed: int, n_calls: int = N_CALLS, name: str | None = None) -> Path:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from disposition.candidate import choose_classifier, fit_candidate
    from disposition.data import CallSpec, check_windows, prepare_calls, split_windows
    from disposition.evaluation import safety_settings
    from disposition.features import add_time_features
    from disposition.report import subgroup_labels
    from disposition.safety import excluded_by_rules
    from experiments.disposition_safety.run import _calls
    from forecasting.io import read_table
    from mlops.entry import CONFIG_DIR

    DEV_DIR.mkdir(parents=True, exist_ok=True)
    path = _calls(DEV_DIR, seed, n_calls)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("disposition", overrides=[f"calls.path={path}", "baseline_enabled=false", *EXTRA])
    spec = CallSpec.from_config(OmegaConf.to_container(cfg.calls, resolve=True))
    calls = prepare_calls(read_table(str(path), cfg.calls.get("read"), "calls.read"), spec, str(path))
    train_mask, cal_mask, test_mask, _ = split_windows(
        calls, OmegaConf.to_container(cfg.split, resolve=True), int(cfg.seed)
    )
    windows = {"training": train_mask, "calibration": cal_mask, "test": test_mask}
    check_windows(calls.y, windows)
    safety = safety_settings(cfg.safety, int(test_mask.sum()) / max(int(cal_mask.sum()), 1))
    frame = add_time_features(calls.frame, spec.date_column, calls.features.time_features)
    chosen = choose_classifier(cfg, calls, frame, windows)
    fitted = fit_candidate(
        chosen.chosen, cfg, calls, frame, windows, safety, tuned=chosen.tuned.get(chosen.chosen_family)
    )
    out = {"test_scale": safety.test_scale, "family": chosen.chosen_family}
    arrays = {}
    plan_rows, plan_p = chosen.planning
    named = {"calibration": np.flatnonzero(cal_mask), "test": np.flatnonzero(test_mask), "plan": plan_rows}
    for window, rows in named.items():
        part = calls.frame.iloc[rows].reset_index(drop=True)
        excluded, _ = excluded_by_rules(part, calls.rules)
        arrays[f"{window}_p"] = plan_p if window == "plan" else fitted.scorer.probabilities(part)
        arrays[f"{window}_unsafe"] = calls.y[rows] == 0
        arrays[f"{window}_eligible"] = ~excluded
        arrays[f"{window}_oracle"] = calls.oracle[rows]
        labels = subgroup_labels(part, spec.subgroups, list(cfg.report.age_bands), None)
        for group in GROUPS:
            arrays[f"{window}_{group}"] = labels[group].astype(str)
    name = name or f"seed{seed}"
    target = DEV_DIR / f"{name}.npz"
    np.savez_compressed(target, **arrays)
    (DEV_DIR / f"{name}.json").write_text(json.dumps({**out, "n_calls": n_calls}))
    return target


def load(seed: str, tag: str | None = None) -> tuple[dict, dict]:
    """The cached arrays of a development run: ``seed`` is ``11`` or ``16:1000000`` (seed:calls);
    ``tag`` the cache variant (None: DISPOSITION_DEV_TAG)."""
    name = _name(seed, tag)
    data = np.load(DEV_DIR / f"{name}.npz", allow_pickle=False)
    return {k: data[k] for k in data.files}, json.loads((DEV_DIR / f"{name}.json").read_text())


def write_page(seeds: list[str], path: Path | None = None) -> Path:
    """The study's tables as a results page (the choice made from them is written below them)."""
    from disposition.report import markdown_table
    from experiments.disposition_safety.procedures import study, summary
    from experiments.disposition_safety.world_cap import main as world_cap
    from experiments.harness import ROOT

    path = path or ROOT / "experiments" / "results" / "disposition_safety_dev.md"
    table = study(seeds)
    shown = _percent_columns(table, SEED_PERCENTS, SEED_RATIOS)
    totals = _percent_columns(summary(table), SUMMARY_PERCENTS, ("mean_ratio",))
    files = [
        str(DEV_DIR / f"calls_seed{str(s).partition(':')[0]}.parquet") for s in seeds if ":" not in str(s)
    ]
    cap = world_cap(files)
    for column in (
        "eligible share",
        "closable share (observed rate)",
        "closable share (true rate)",
        "observed floor (top 1 % of eligible)",
        "practice share",
        "practice observed adverse",
    ):
        cap[column] = cap[column].map(lambda v: f"{100 * v:.2f} %")
    lines = [
        "# Disposition safety: development study of the threshold procedure (seeds "
        + ", ".join(map(str, seeds))
        + ")",
        "",
        "Seeds the committed benchmark (seeds 1-5) does not use, at the committed generator's default "
        f"size ({N_CALLS:,} calls) unless a seed says `seed:calls`. For each, the default training job's "
        "steps (model choice by cross-validation, fit, calibration) ran once "
        "(`python -m experiments.disposition_safety.dev_study cache ...`) and the threshold procedures "
        "below were applied to the saved calibration-window scores and scored on the test window "
        "(`... dev_study page ...` writes this page). The oracle is given the same procedure, planned on "
        "its own true probabilities of the same training calls. Targets as in the benchmark: test "
        "bound within 1 % overall (`bound_ok`) and in every served age band, sex and category level "
        "(`levels_ok`), closure >= 15 % (`share_ok`), ratio to the oracle >= 0.9 (`ratio_ok`).",
        "",
        "Variants: `counts` starts the fixed sequence where counts alone say a test could reject (the "
        "committed procedure before this study); `plan P` starts at the first candidate that planning "
        "data (the training window's out-of-fold probabilities) predict to reject with probability P; "
        "`max power` at the one they predict most likely to; `+ levels` adds a walk per subgroup level "
        "(`vs limit`: tested against the limit; `confirm C`: against the rate a test window would "
        "confirm with probability C).",
        "",
        "## Summary over seeds",
        "",
        markdown_table(totals),
        "",
        "## Per seed",
        "",
        markdown_table(shown),
        "",
        "## What the synthetic world allows (oracle ranking, expected observed outcomes, no sampling noise)",
        "",
        "`python -m experiments.disposition_safety.world_cap`: eligible calls ranked by the true "
        "probability; the largest share of all calls whose EXPECTED observed under-triage (follow-up "
        "sensitivity 0.9, false positives 0.2 % of safe calls, as committed) stays within the rate.",
        "",
        markdown_table(cap),
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def _name(seed: str, tag: str | None = None) -> str:
    number, _, calls = str(seed).partition(":")
    tag = TAG if tag is None else tag
    return f"seed{number}" + (f"_{calls}" if calls else "") + (f"_{tag}" if tag else "")


def _percent_columns(table: pd.DataFrame, percents, ratios) -> pd.DataFrame:
    """A copy of ``table`` with shares as percentages (2 decimals) and ratios to 3 decimals."""
    shown = table.copy()
    for column in percents:
        shown[column] = shown[column].map(lambda v: f"{100 * v:.2f} %")
    for column in ratios:
        shown[column] = shown[column].map(lambda v: f"{v:.3f}")
    return shown


SEED_PERCENTS, SEED_RATIOS = ("share", "bound", "worst", "oracle_share", "oracle_bound"), ("ratio",)
SUMMARY_PERCENTS = ("mean_share", "min_share", "max_bound", "oracle_mean_share")


def write_joint_page(seeds: list[str], tagged: dict[str, list[str]], path: Path | None = None) -> Path:
    """The family-wise study (disposition/joint_threshold.py) as a results page: the joint walk and
    the multi-start variants on the default split (``seeds``) and, for each tag in ``tagged``
    (a cache made with other training-job overrides, e.g. another calibration share), its seeds."""
    from disposition.report import markdown_table
    from experiments.disposition_safety.procedures import (
        JOINT_VARIANTS,
        MULTI_VARIANTS,
        joint_study,
        multi_study,
        summary,
    )
    from experiments.harness import ROOT

    path = path or ROOT / "experiments" / "results" / "disposition_safety_dev_joint.md"
    sections = []
    for tag, tag_seeds in {"": seeds, **tagged}.items():
        studies = [joint_study(tag_seeds, tag=tag), multi_study(tag_seeds, tag=tag)]
        table = pd.concat(studies, ignore_index=True)
        table.insert(1, "split", tag or "default")
        sections.append(table)
    table = pd.concat(sections, ignore_index=True)
    table.to_csv(path.with_suffix(".csv"), index=False)
    totals = []
    for split, part in table.groupby("split", sort=False):
        s = summary(part.drop(columns="split"))
        s.insert(0, "split", split)
        totals.append(s)
    totals = _percent_columns(pd.concat(totals, ignore_index=True), SUMMARY_PERCENTS, ("mean_ratio",))
    shown = _percent_columns(table, SEED_PERCENTS, SEED_RATIOS)
    level_delta = {"L": "delta/(L+1) each (family-wise)", None: "none", 1: "delta each (not family-wise)"}
    variants = "\n".join(
        [
            f"- `{name}`: overall/levels tested rate {v[0]}/{v[1]} (None: the limit), starts {v[2]}, "
            f"shares {v[3]}"
            for name, v in JOINT_VARIANTS.items()
        ]
        + [
            f"- `{name}`: starts {v[0]}, shares {v[1]}, level walks {level_delta[v[2]]}, rate {v[3]}"
            for name, v in MULTI_VARIANTS.items()
        ]
    )
    lines = [
        "# Disposition safety: development study of a family-wise threshold (seeds "
        + ", ".join(map(str, seeds))
        + ")",
        "",
        "Cached development runs as in disposition_safety_dev.md (`dev_study cache`; a split tag is a "
        "cache made with `DISPOSITION_DEV_OVERRIDES=split.calibration_fraction=0.35 "
        "DISPOSITION_DEV_TAG=cal35`: training 45 %, calibration 35 %, test 20 % of calls, the test window "
        "unchanged). Procedures: `joint` is "
        "disposition/joint_threshold.py (levels withheld up front from the training window's out-of-fold "
        "probabilities and counts, one threshold tested by the intersection-union test in the overall and "
        "every served level, delta split over planned starts: family-wise at delta); `N starts` are "
        "fixed-sequence walks from N planned starts with delta split between them (Bonferroni), with or "
        "without per-level walks. Columns as in disposition_safety_dev.md; the oracle gets the same "
        "procedure.",
        "",
        variants,
        "",
        "## Summary over seeds",
        "",
        markdown_table(totals),
        "",
        "## Per seed",
        "",
        markdown_table(shown),
        "",
    ]
    path.write_text("\n".join(lines))
    return path


if __name__ == "__main__":
    command, seeds = sys.argv[1], sys.argv[2:]
    if command == "cache":
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        for seed in seeds:
            start = time.perf_counter()
            number, _, calls = seed.partition(":")
            done = cache(int(number), int(calls or N_CALLS), _name(seed))
            print(seed, done, f"{time.perf_counter() - start:.0f} s", flush=True)
    elif command == "page":
        print(write_page(seeds))
    elif command == "joint-page":  # joint-page 11 12 ... [--tag cal35 11 12 ...]
        plain, _, rest = " ".join(seeds).partition("--tag")
        tag, *tag_seeds = rest.split() or [""]
        print(write_joint_page(plain.split(), {tag: tag_seeds} if tag else {}))
    elif command == "evaluate":
        from experiments.disposition_safety.procedures import study, summary

        pd.set_option("display.width", 250)
        table = study(seeds)
        print(table.to_string())
        print(summary(table).to_string())
    else:
        raise SystemExit(f"unknown command {command!r}: cache or evaluate")
