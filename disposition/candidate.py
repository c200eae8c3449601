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
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, TimeSeriesSplit

from disposition.calibration import choose_method, fit_calibrator
from disposition.data import PreparedCalls
from disposition.evaluation import SafetySettings
from disposition.model import (
    TreeModel,
    fit_classifier,
    fit_key,
    is_tree,
    make_classifier_pipeline,
    model_input,
    tune,
    wrap_fitted,
)
from disposition.model_choice import Candidate, Choice, as_folds, compare
from disposition.reasons import ContributionTable
from disposition.safety import ClosureResult, excluded_by_rules
from disposition.scorer import RemoteClosureScorer, training_ranges
from disposition.threshold import Plan
from mlops.errors import ConfigError, DataValidationError


@dataclass
class Fitted:
    """A candidate fitted on the training window and calibrated and thresholded on the next."""

    scorer: RemoteClosureScorer
    selection: ClosureResult
    params: dict
    tuning: pd.DataFrame
    seconds: float
    plan: Plan | None = None  # the planning data the threshold's walk started from


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


def tuned_params(
    classifier_cfg: DictConfig,
    cfg: DictConfig,
    calls: PreparedCalls,
    frame: pd.DataFrame,
    windows: dict,
    fitted: dict | None = None,
) -> tuple[dict, pd.DataFrame]:
    """Grid search of ``classifier.search`` by cross-validation in the training window, folds as the split.

    ``fitted`` receives each fold's fitted pipeline (:func:`disposition.model.tune`)."""
    grid = OmegaConf.to_container(classifier_cfg.get("search") or {}, resolve=True)
    if not (cfg.tuning.enabled and grid):
        return {}, pd.DataFrame()
    categorical, numeric = calls.features.categorical, calls.features.model_numeric
    rows = _subsample(windows["training"], cfg.tuning.max_rows, cfg.seed + 1)
    sample = frame.iloc[rows]
    pipeline = make_classifier_pipeline(build_estimator(classifier_cfg), categorical, numeric, sample)
    folds, groups = tuning_folds(calls, rows, int(cfg.tuning.n_splits), int(cfg.seed))
    return tune(
        pipeline,
        model_input(pipeline, sample, categorical, numeric),
        calls.y[rows],
        grid,
        int(cfg.tuning.n_splits),
        str(cfg.tuning.scoring),
        len(categorical),
        cv=folds,
        groups=groups,
        fitted=fitted,
    )


def fit_candidate(
    classifier_cfg: DictConfig,
    cfg: DictConfig,
    calls: PreparedCalls,
    frame: pd.DataFrame,
    windows: dict[str, np.ndarray],
    safety: SafetySettings,
    max_rows: int | None = None,
    tune_it: bool = True,
    tuned: tuple[dict, pd.DataFrame] | None = None,
    planning: tuple[np.ndarray, np.ndarray] | None = None,
) -> Fitted:
    """Tune, fit, calibrate and threshold one classifier on the training and calibration windows.

    ``tuned`` (parameters and tuning table) skips the grid search, when the model choice already ran it.
    ``planning`` (training-window frame positions, out-of-fold probabilities) plans where the
    threshold's test sequence starts (:func:`planning_data`); None: it starts by counts alone.
    """
    start = time.perf_counter()
    features = calls.features
    categorical, numeric = features.categorical, features.model_numeric
    train_rows = _subsample(windows["training"], max_rows, cfg.seed)
    train = frame.iloc[train_rows]
    y = calls.y
    pipeline = make_classifier_pipeline(build_estimator(classifier_cfg), categorical, numeric, train)
    params, tuning = {}, pd.DataFrame()
    if tuned is not None:
        params, tuning = tuned
    elif tune_it:
        params, tuning = tuned_params(classifier_cfg, cfg, calls, frame, windows)
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
    plan = planning_data(planning, frame, calls)
    selection = safety.choose(calibrator.predict(raw), y[cal_rows] == 0, ~excluded, plan)
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
    return Fitted(scorer, selection, params, tuning, time.perf_counter() - start, plan)


def planning_data(
    planning: tuple[np.ndarray, np.ndarray] | None, frame: pd.DataFrame, calls: PreparedCalls
) -> Plan | None:
    """The out-of-fold probabilities, outcomes and hard-rule eligibility of training calls, which
    plan the threshold's test sequence (training-window outcomes only, never the calibration window's)."""
    if planning is None:
        return None
    positions, p = planning
    excluded, _ = excluded_by_rules(frame.iloc[positions], calls.rules)
    return Plan(np.asarray(p, dtype=float), calls.y[positions] == 0, ~excluded, positions)


def family(classifier_cfg: DictConfig) -> str:
    """``lightgbm`` or ``logistic``: the model family of a classifier config."""
    return "lightgbm" if is_tree(build_estimator(classifier_cfg)) else "logistic"


@dataclass
class ClassifierChoice:
    """Which classifier config to register and which to report beside it, and the evidence."""

    chosen: DictConfig
    other: DictConfig | None
    tuned: dict[str, tuple[dict, pd.DataFrame]]  # family -> (parameters, tuning table)
    choice: Choice | None = None
    fold_text: str = ""
    seconds: float = 0.0
    sample_rows: np.ndarray | None = None  # frame positions of the cross-validation sample

    @property
    def chosen_family(self) -> str:
        return family(self.chosen)

    @property
    def planning(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The chosen family's cross-fitted out-of-fold probabilities on training calls (frame
        positions, probabilities): what plans the threshold's test sequence; None without a choice."""
        if self.choice is None or self.sample_rows is None or self.chosen_family not in self.choice.oof:
            return None
        positions, p = self.choice.oof[self.chosen_family]
        return self.sample_rows[positions], p


def choose_classifier(
    cfg: DictConfig, calls: PreparedCalls, frame: pd.DataFrame, windows: dict[str, np.ndarray]
) -> ClassifierChoice:
    """``classifier=auto``: tune LightGBM (``classifier``) and the logistic regression (``baseline``),
    compare them with their calibrations by cross-validation on the training window, keep the better.

    Any other classifier is used as configured, with ``baseline`` beside it when it differs.
    """
    start = time.perf_counter()
    if str(cfg.classifier.name) != "auto":
        other = cfg.get("baseline")
        other = other if other is not None and other.name != cfg.classifier.name else None
        return ClassifierChoice(cfg.classifier, other, {})
    configs = {family(cfg.classifier): cfg.classifier, family(cfg.baseline): cfg.baseline}
    if set(configs) != {"lightgbm", "logistic"}:
        raise ConfigError(
            "classifier=auto compares LightGBM (classifier.*) with the logistic regression in baseline.*; "
            "set baseline=logistic, or force one model with classifier=lightgbm or classifier=logistic"
        )
    # The grid search's fold fits, kept: the comparison below fits the tuned parameters on the same
    # sample and folds, and reuses them instead of fitting again (a quarter of the model choice's time).
    fitted: dict[str, dict] = {name: {} for name in configs}
    tuned = {name: tuned_params(c, cfg, calls, frame, windows, fitted[name]) for name, c in configs.items()}
    settings = cfg.get("model_choice") or {}
    rows = _subsample(windows["training"], cfg.tuning.max_rows, cfg.seed + 1)  # the tuning sample and folds
    sample = frame.iloc[rows]
    y = calls.y[rows]
    n_splits = int(cfg.tuning.n_splits)
    splitter, groups = tuning_folds(calls, rows, n_splits, int(cfg.seed))
    splitter = TimeSeriesSplit(n_splits=n_splits) if splitter is None else splitter
    folds = as_folds(splitter, len(rows), y, groups)
    categorical, numeric = calls.features.categorical, calls.features.model_numeric

    def candidate(name: str) -> Candidate:
        config, (params, _) = configs[name], tuned[name]

        def fit_and_score(train: np.ndarray, valid: np.ndarray) -> np.ndarray:
            part = sample.iloc[train]
            pipeline = make_classifier_pipeline(build_estimator(config), categorical, numeric, part)
            # The same fit as the grid search's on this fold (same layout, parameters and rows), if any.
            pipe = fitted[name].get(fit_key(pipeline, params, sample.index[valid]))
            if pipe is None:
                inputs = model_input(pipeline, part, categorical, numeric)
                pipe = fit_classifier(pipeline, inputs, y[train], params, len(categorical))
            model = wrap_fitted(pipe, categorical, numeric, part)
            return model.raw_score(model.encode(sample.iloc[valid]))

        return Candidate(name, fit_and_score, complexity=0 if name == "logistic" else 1)

    method = choose_method(
        str(cfg.calibration.method), int(windows["calibration"].sum()), int(cfg.calibration.isotonic_min_rows)
    )
    # The one-standard-error rule at the size the model is fitted on, when the comparison subsampled.
    at_fit_size = bool(settings.get("se_at_fit_size", False))
    se_scale = min(1.0, np.sqrt(len(rows) / windows["training"].sum())) if at_fit_size else 1.0
    choice = compare(
        [candidate("logistic"), candidate("lightgbm")],
        y,
        folds,
        method,
        str(settings.get("metric", "log_loss")),
        bool(settings.get("prefer_simpler", True)),
        se_scale=float(se_scale),
    )
    kind = {"temporal": "time-ordered", "random": "stratified", "group": "grouped, stratified"}[
        calls.spec.split
    ]
    fold_text = f"{len(folds)}-fold {kind} cross-validation over {len(rows):,} training calls"
    chosen = configs[choice.chosen]
    other = configs["logistic" if choice.chosen == "lightgbm" else "lightgbm"]
    return ClassifierChoice(chosen, other, tuned, choice, fold_text, time.perf_counter() - start, rows)
