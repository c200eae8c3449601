"""Choosing between model families by cross-validation on the training window only.

Each candidate (LightGBM, logistic regression) is fitted on the training part of every fold and
scores the fold's held-out part; its raw scores are then calibrated the way the run will calibrate
them (isotonic or Platt, :func:`disposition.calibration.fit_calibrator`), by cross-fitting: the
calibrator for one fold is learnt on the other folds' out-of-fold scores, so no probability is
calibrated on its own outcome. The calibrated out-of-fold probabilities are scored per fold (log
loss, Brier score, AUC), and the candidates compared on the paired per-fold differences.

The rule (stated in the report): the candidate with the better mean of ``metric`` is chosen; with
``prefer_simpler`` the more complex one (LightGBM) must beat the simpler one (logistic regression)
by more than one standard error of the paired differences, otherwise the simpler one is kept (the
"one standard error" rule: a difference within fold noise does not buy complexity).

When the comparison runs on a subsample of the training window (``tuning.max_rows``) and the chosen
model is then fitted on many more calls, the fold noise of the subsample overstates the noise at the
size the model is fitted on: with ``se_scale`` = sqrt(sample calls / training calls) the standard error
is taken at the fitted size (the standard error of a mean over calls shrinks as one over the square
root of their number). Without subsampling the scale is 1 and the rule is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from disposition.calibration import fit_calibrator
from mlops.errors import ConfigError

METRICS = {"log_loss": False, "brier": False, "auc": True}  # metric -> higher is better


@dataclass
class Candidate:
    """A model family to compare: ``fit(rows) -> raw_score(rows)`` on the frame's positions."""

    name: str
    fit_and_score: Callable[[np.ndarray, np.ndarray], np.ndarray]
    complexity: int  # lower is simpler (logistic 0, LightGBM 1)


@dataclass
class Choice:
    """The comparison: per-fold scores of each candidate, the chosen one and why."""

    chosen: str
    metric: str
    folds: pd.DataFrame  # one row per candidate and fold: log_loss, brier, auc, calls
    summary: pd.DataFrame  # one row per candidate: mean and standard deviation of each metric
    reason: str
    notes: list[str] = field(default_factory=list)
    # candidate -> (positions of the rows scored out of fold, their cross-fitted calibrated
    # probabilities): estimates from the training window only, which plan the safety threshold's
    # test sequence (disposition.threshold) without touching the calibration window's outcomes.
    oof: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def compare(
    candidates: Iterable[Candidate],
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    calibration_method: str,
    metric: str = "log_loss",
    prefer_simpler: bool = True,
    se_scale: float = 1.0,
) -> Choice:
    """Cross-validate each candidate with its calibration and choose one (see the module docstring).

    Parameters
    ----------
    y : array of 0/1
        Outcomes of the rows the folds index.
    folds : list of (train positions, validation positions)
        At least two folds (the calibration of one fold is learnt on the others).
    calibration_method : {"isotonic", "sigmoid"}
        The method the run uses on its calibration window.
    se_scale : float in (0, 1]
        Multiplies the paired differences' standard error in the one-standard-error rule: the
        standard error at the size the chosen model is fitted on (see the module docstring).
    """
    if not 0 < se_scale <= 1:
        raise ValueError(f"se_scale must be in (0, 1], got {se_scale}")
    if metric not in METRICS:
        raise ConfigError(f"model_choice.metric={metric!r}: use one of {sorted(METRICS)}")
    if len(folds) < 2:
        raise ConfigError("model choice needs at least 2 cross-validation folds (tuning.n_splits >= 2)")
    candidates = list(candidates)
    y = np.asarray(y)
    rows, oof = [], {}
    for candidate in candidates:
        raw = [candidate.fit_and_score(train, valid) for train, valid in folds]
        calibrated = []
        for k, (_, valid) in enumerate(folds):
            others = [j for j in range(len(folds)) if j != k]
            calibrator = fit_calibrator(
                np.concatenate([raw[j] for j in others]),
                np.concatenate([y[folds[j][1]] for j in others]),
                calibration_method,
            )
            p = calibrator.predict(raw[k])
            calibrated.append(p)
            rows.append({"model": candidate.name, "fold": k, "calls": len(valid), **_scores(y[valid], p)})
        oof[candidate.name] = (np.concatenate([v for _, v in folds]), np.concatenate(calibrated))
    table = pd.DataFrame(rows)
    summary = (
        table.groupby("model", sort=False)[list(METRICS)]
        .agg(["mean", "std"])
        .set_axis([f"{m}_{s}" for m in METRICS for s in ("mean", "std")], axis=1)
        .reset_index()
    )
    chosen, reason = _decide(candidates, table, metric, prefer_simpler, se_scale)
    return Choice(chosen, metric, table, summary, reason, oof=oof)


def _scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    auc = roc_auc_score(y, p) if len(np.unique(y)) == 2 else float("nan")
    return {"log_loss": log_loss(y, p, labels=[0, 1]), "brier": brier_score_loss(y, p), "auc": auc}


def _decide(
    candidates: list[Candidate], table: pd.DataFrame, metric: str, prefer_simpler: bool, se_scale: float = 1.0
) -> tuple[str, str]:
    sign = 1.0 if METRICS[metric] else -1.0  # "gain": positive is better
    by = {c.name: table.loc[table["model"] == c.name, metric].to_numpy() for c in candidates}
    means = {name: float(np.mean(v)) for name, v in by.items()}
    best = max(candidates, key=lambda c: sign * means[c.name])
    simplest = min(candidates, key=lambda c: c.complexity)
    if not prefer_simpler or best.name == simplest.name:
        return best.name, f"best mean {metric} over the folds ({means[best.name]:.4f})"
    gains = sign * (by[best.name] - by[simplest.name])
    se = float(np.std(gains, ddof=1) / np.sqrt(len(gains))) if len(gains) > 1 else float("inf")
    gain = float(np.mean(gains))
    what = f"one standard error of the paired fold differences ({se:.4f})"
    if se_scale < 1:  # the comparison saw a subsample; the error at the size the model is fitted on
        what = (
            f"one standard error of the paired fold differences taken at the training window's size "
            f"({se:.4f} x sqrt(sample / training calls) {se_scale:.3f} = {se * se_scale:.4f})"
        )
        se *= se_scale
    if gain > se:
        return best.name, f"{best.name} is better on mean {metric} by {gain:.4f}, more than {what}"
    return simplest.name, (
        f"{best.name} is better on mean {metric} by only {gain:.4f}, within {what}: the simpler "
        f"{simplest.name} is kept"
    )


def choice_markdown(choice: Choice, fold_text: str) -> str:
    """The comparison table and the decision, for the report."""
    show = choice.summary.copy()

    def spread(metric: str) -> list[str]:
        pairs = zip(show[f"{metric}_mean"], show[f"{metric}_std"], strict=True)
        return [f"{m:.4f} ± {s:.4f}" for m, s in pairs]

    table = pd.DataFrame(
        {
            "model": show["model"],
            **{metric.replace("_", " "): spread(metric) for metric in METRICS},
            "chosen": ["yes" if m == choice.chosen else "" for m in show["model"]],
        }
    )
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    per_fold = choice.folds.pivot(index="fold", columns="model", values=choice.metric)
    folds = "; ".join(
        f"{model}: " + ", ".join(f"{v:.4f}" for v in per_fold[model]) for model in per_fold.columns
    )
    return "\n".join(
        [
            f"Candidates compared by {fold_text} on the training window only (mean ± standard deviation over "
            "folds), each with its calibration (cross-fitted on the other folds' out-of-fold scores). "
            f"Chosen by {choice.metric.replace('_', ' ')}: **{choice.chosen}**, {choice.reason}.",
            "",
            header,
            rule,
            *body,
            "",
            f"{choice.metric.replace('_', ' ')} per fold: {folds}.",
            *[f"\n{note}" for note in choice.notes],
        ]
    )


def as_folds(
    splitter, n_rows: int, y: np.ndarray, groups: np.ndarray | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Materialise a scikit-learn splitter's folds over positions ``0..n_rows-1``."""
    X = np.zeros((n_rows, 1))
    extra: Mapping = {} if groups is None else {"groups": groups}
    return [(np.asarray(a), np.asarray(b)) for a, b in splitter.split(X, y, **extra)]
