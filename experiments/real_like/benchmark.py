"""5-fold AUC on the small real-like triage file: the toolkit's model against a plain logistic regression.

Outer folds: stratified 5-fold over all 1,300 records (seeded). In each, the toolkit runs as
``classifier=auto`` would on that fold's training part: both families tuned on their grids and
compared with their calibrations by its own inner cross-validation
(:func:`disposition.candidate.choose_classifier`); the chosen one is fitted on the training part and
scores the held-out part. Beside it, on the same folds and the same feature columns: the toolkit's
two families with their default settings, and the reference, a plain standardised logistic
regression (numbers median-imputed and standardised, categories one-hot, C = 1). Calibration is
monotone, so it does not change an AUC and is left out of the outer comparison.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from scipy.stats import t as student_t
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from disposition.candidate import build_estimator, choose_classifier
from disposition.data import CallSpec, prepare_calls
from disposition.features import add_time_features, as_linear_input
from disposition.model import fit_classifier, make_classifier_pipeline, model_input, wrap_fitted
from experiments.harness import ROOT, BenchmarkReport
from mlops.tables import read_table

# The calls settings of the README's command for this file (disposition/README.md).
CALLS = (
    "calls=csv \"calls.read.sep=';'\" \"calls.read.decimal=','\" \"calls.read.na_values=['??']\" "
    "calls.split=random calls.target.column=discharged_home "
    "'calls.exclude=[patient_id,diagnosis_in_ed,disposition,length_of_stay_min]' "
    "'calls.never_remote={ktas_rn:[1,2],chief_complaint:[\"re:weakness|dysarthria|slurred|mental change\"]}' "
    "classifier.estimator.n_jobs=1"
)


def _plain_logistic(categorical: list[str], numeric: list[str]):
    encode = ColumnTransformer(
        [
            ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("labels", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    return make_pipeline(encode, LogisticRegression(C=1.0, max_iter=1000))


def _toolkit_auc(config, calls, frame, train, test, params) -> float:
    categorical, numeric = calls.features.categorical, calls.features.model_numeric
    part = frame.iloc[train]
    pipeline = make_classifier_pipeline(build_estimator(config), categorical, numeric, part)
    fitted = fit_classifier(
        pipeline, model_input(pipeline, part, categorical, numeric), calls.y[train], params, len(categorical)
    )
    model = wrap_fitted(fitted, categorical, numeric, part)
    return float(roc_auc_score(calls.y[test], model.raw_score(model.encode(frame.iloc[test]))))


def run(
    workdir: Path, path: str = "data/real_like/triage.csv", folds: int = 5, seed: int = 0
) -> BenchmarkReport:
    source = ROOT / path
    overrides = [*shlex.split(CALLS), f"calls.path={source}", f"tracking.store_dir={workdir / 'store'}"]
    if GlobalHydra.instance().is_initialized():  # inside `python -m experiments.bench`: same conf/ tree
        cfg = compose(config_name="disposition", overrides=overrides)
    else:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose(config_name="disposition", overrides=overrides)
    spec = CallSpec.from_config(OmegaConf.to_container(cfg.calls, resolve=True))
    calls = prepare_calls(read_table(source, cfg.calls.read, "calls.read"), spec, str(source))
    frame = add_time_features(calls.frame, spec.date_column, calls.features.time_features)
    categorical, numeric = calls.features.categorical, calls.features.model_numeric
    y = calls.y
    rows = []
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        in_train = np.zeros(len(y), dtype=bool)
        in_train[train] = True
        windows = {"training": in_train, "calibration": ~in_train, "test": ~in_train}
        choice = choose_classifier(cfg, calls, frame, windows)
        chosen = choice.chosen_family
        plain = _plain_logistic(categorical, numeric)
        inputs = as_linear_input(frame, categorical, numeric)
        plain.fit(inputs.iloc[train], y[train])
        rows.append(
            {
                "fold": k,
                "calls": len(test),
                "toolkit (auto)": _toolkit_auc(
                    choice.chosen, calls, frame, train, test, choice.tuned[chosen][0]
                ),
                "chosen": chosen,
                "toolkit logistic (defaults)": _toolkit_auc(cfg.baseline, calls, frame, train, test, {}),
                "toolkit LightGBM (defaults)": _toolkit_auc(cfg.classifier, calls, frame, train, test, {}),
                "plain standardised logistic": float(
                    roc_auc_score(y[test], plain.decision_function(inputs.iloc[test]))
                ),
            }
        )
    seconds = time.perf_counter() - started
    table = pd.DataFrame(rows)
    return _report(table, seconds, calls, folds, (load_before, os.getloadavg()[0]))


def _report(
    table: pd.DataFrame, seconds: float, calls, folds: int, load: tuple[float, float]
) -> BenchmarkReport:
    models = [
        "toolkit (auto)",
        "toolkit logistic (defaults)",
        "toolkit LightGBM (defaults)",
        "plain standardised logistic",
    ]
    summary = pd.DataFrame(
        {
            "model": models,
            "mean AUC": [table[m].mean() for m in models],
            "sd": [table[m].std(ddof=1) for m in models],
        }
    )
    diff = table["toolkit (auto)"] - table["plain standardised logistic"]
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    half = student_t.ppf(0.975, len(diff) - 1) * se
    met = diff.mean() >= 0
    lines = [
        "# Real-like triage file: 5-fold AUC, toolkit against a plain logistic regression",
        "",
        f"File `data/real_like/triage.csv` (1,300 made-up records in a real export's format, "
        f"[README](../../data/real_like/README.md)), read and prepared as the README's one command "
        f"does: {len(calls.features.categorical)} categorical and "
        f"{len(calls.features.model_numeric)} numeric "
        f"features ({', '.join(calls.features.names)}). Stratified {folds}-fold cross-validation over all "
        "records (seed 0); in every fold the toolkit chooses its model on the training part only "
        "(`classifier=auto`: both families tuned, then compared with their calibrations by an inner "
        "stratified 3-fold cross-validation) and the chosen model scores the held-out part.",
        "",
        "| model | mean AUC | sd over folds |",
        "|---|---|---|",
        *[f"| {r.model} | {r._2:.4f} | {r.sd:.4f} |" for r in summary.itertuples()],
        "",
        f"Toolkit (auto) minus plain logistic regression, paired over folds: {diff.mean():+.4f} "
        f"(95 % t interval {diff.mean() - half:+.4f} to {diff.mean() + half:+.4f}). Target (AUC no worse "
        "than "
        f"the plain logistic regression on the same folds): **{'met' if met else 'not met'}** on the mean.",
        "",
        "Chosen per fold: " + ", ".join(f"fold {r.fold}: {r.chosen}" for r in table.itertuples()) + ".",
        "",
        "Per fold:",
        "",
        "| fold | calls | " + " | ".join(models) + " |",
        "|---|---|" + "---|" * len(models),
        *[
            f"| {r['fold']} | {r['calls']} | " + " | ".join(f"{r[m]:.4f}" for m in models) + " |"
            for _, r in table.iterrows()
        ],
        "",
        "The file is synthetic and its outcome additive on the log-odds (see its README), which favours "
        "a logistic regression; on real records the gap between the families may differ. This will be "
        "checked on real clinical data this project does not hold.",
        "",
        f"Wall time {seconds:.0f} s for all folds, measured on a shared machine (load average {load[0]:.1f} "
        f"before, {load[1]:.1f} after, on {os.cpu_count()} cores).",
    ]
    metrics = {
        "auc_toolkit_auto": float(table["toolkit (auto)"].mean()),
        "auc_plain_logistic": float(table["plain standardised logistic"].mean()),
        "auc_gap_vs_plain": float(diff.mean()),
        "target_met": float(met),
    }
    return BenchmarkReport("\n".join(lines) + "\n", metrics, {"": table})
