"""Fitting one candidate: tune and fit on the training window, calibrate and threshold on the next.

Pipeline layer: builds the classifier from its Hydra config; everything else is library calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from disposition.calibration import fit_calibrator
from disposition.data import PreparedCalls
from disposition.evaluation import SafetySettings
from disposition.model import (
    TreeModel,
    fit_classifier,
    make_classifier_pipeline,
    model_input,
    tune,
    wrap_fitted,
)
from disposition.reasons import ContributionTable
from disposition.safety import ClosureResult, excluded_by_rules
from disposition.scorer import RemoteClosureScorer, training_ranges
from mlops.errors import ConfigError, DataValidationError


@dataclass
class Fitted:
    """A candidate fitted on the training window and calibrated and thresholded on the next."""

    scorer: RemoteClosureScorer
    selection: ClosureResult
    params: dict
    tuning: pd.DataFrame
    seconds: float


def build_estimator(classifier_cfg: DictConfig):
    """Instantiate ``classifier.estimator``, turning a bad parameter into a one-line config error."""
    try:
        return instantiate(classifier_cfg.estimator, _convert_="all")
    except InstantiationException as error:
        cause = error.__cause__ or error
        raise ConfigError(
            f"cannot build classifier {classifier_cfg.estimator.get('_target_')}: {cause}"
        ) from error


def _subsample(mask: np.ndarray, max_rows: int | None, seed: int) -> np.ndarray:
    """Rows of ``mask``, at most ``max_rows`` of them drawn at random but kept in time order."""
    rows = np.flatnonzero(mask)
    if max_rows and len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=int(max_rows), replace=False))
    return rows


def tuning_folds(calls: PreparedCalls, rows: np.ndarray, n_splits: int, seed: int):
    """Folds that follow ``calls.split``: time-ordered (None), stratified, or grouped and stratified."""
    kind = calls.spec.split
    if kind == "temporal":
        return None, None
    if kind == "random":
        return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed), None
    groups = calls.groups[rows]
    if len(np.unique(groups)) < n_splits:
        raise DataValidationError(
            f"the training window has {len(np.unique(groups))} group(s) of calls.split_group="
            f"{calls.spec.split_group!r}, fewer than tuning.n_splits={n_splits}; lower tuning.n_splits "
            "or set tuning.enabled=false"
        )
    return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed), groups


def fit_candidate(
    classifier_cfg: DictConfig,
    cfg: DictConfig,
    calls: PreparedCalls,
    frame: pd.DataFrame,
    windows: dict[str, np.ndarray],
    safety: SafetySettings,
    max_rows: int | None = None,
    tune_it: bool = True,
) -> Fitted:
    """Tune, fit, calibrate and threshold one classifier on the training and calibration windows."""
    start = time.perf_counter()
    features = calls.features
    categorical, numeric = features.categorical, features.model_numeric
    train_rows = _subsample(windows["training"], max_rows, cfg.seed)
    train = frame.iloc[train_rows]
    y = calls.y
    pipeline = make_classifier_pipeline(build_estimator(classifier_cfg), categorical, numeric, train)
    params, tuning = {}, pd.DataFrame()
    grid = OmegaConf.to_container(classifier_cfg.get("search") or {}, resolve=True)
    if tune_it and cfg.tuning.enabled and grid:
        rows = _subsample(windows["training"], cfg.tuning.max_rows, cfg.seed + 1)
        sample = frame.iloc[rows]
        folds, groups = tuning_folds(calls, rows, int(cfg.tuning.n_splits), int(cfg.seed))
        params, tuning = tune(
            pipeline,
            model_input(pipeline, sample, categorical, numeric),
            y[rows],
            grid,
            int(cfg.tuning.n_splits),
            str(cfg.tuning.scoring),
            len(categorical),
            cv=folds,
            groups=groups,
        )
    fitted = fit_classifier(
        pipeline, model_input(pipeline, train, categorical, numeric), y[train_rows], params, len(categorical)
    )
    model = wrap_fitted(fitted, categorical, numeric, train)

    cal_rows = np.flatnonzero(windows["calibration"])
    encoded = model.encode(frame.iloc[cal_rows])
    raw = model.raw_score(encoded)
    calibrator = fit_calibrator(
        raw, y[cal_rows], cfg.calibration.method, int(cfg.calibration.isotonic_min_rows)
    )
    excluded, _ = excluded_by_rules(frame.iloc[cal_rows], calls.rules)
    selection = safety.choose(calibrator.predict(raw), y[cal_rows] == 0, ~excluded)
    table = None
    if isinstance(model, TreeModel):
        sample = np.random.default_rng(cfg.seed + 2).permutation(len(cal_rows))[
            : int(cfg.reasons.table_calls)
        ]
        table = ContributionTable(len(categorical)).fit(encoded[sample], model.contributions(encoded[sample]))
    scorer = RemoteClosureScorer(
        model,
        calibrator,
        selection.threshold,
        calls.rules,
        features,
        table,
        top_k=int(cfg.reasons.top_k),
        exact_max_rows=int(cfg.reasons.exact_max_rows),
        ranges=training_ranges(train, features),
    )
    return Fitted(scorer, selection, params, tuning, time.perf_counter() - start)
