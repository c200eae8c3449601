"""Classifier pipelines for P(safe remote closure), their tuning, and the fitted models that serve.

A candidate is a scikit-learn :class:`~sklearn.pipeline.Pipeline` of an encoder and a classifier:
LightGBM on category codes (:class:`~disposition.features.CallEncoder`) or logistic regression on
one-hot/spline features. Tuning is a grid search with time-ordered folds inside the training
window (each fold validates on calls after the ones it fits), so it never looks at the future.

After fitting, a pipeline is wrapped as a :class:`TreeModel` or :class:`LinearModel`: both give the
raw score (log-odds) and per-feature contributions to it, and save themselves to a folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import joblib
import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import GridSearchCV, TimeSeriesSplit
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from disposition.features import CallEncoder, as_linear_input, encode_by_value, linear_preprocessor
from mlops.errors import ConfigError


def is_tree(estimator) -> bool:
    """Whether ``estimator`` is the LightGBM classifier (encoded as codes, explained by its own SHAP)."""
    return isinstance(estimator, lgb.LGBMClassifier)


def make_classifier_pipeline(
    estimator, categorical: Sequence[str], numeric: Sequence[str], sample: pd.DataFrame
) -> Pipeline:
    """Encoder + ``estimator``, the encoder chosen for the estimator's family.

    ``sample`` (training rows) decides which numeric columns the linear encoder splines.
    """
    if is_tree(estimator):
        encoder = CallEncoder(list(categorical), list(numeric))
    else:
        encoder = linear_preprocessor(categorical, numeric, sample)
    return Pipeline([("encode", encoder), ("model", estimator)])


def model_input(pipeline: Pipeline, frame: pd.DataFrame, categorical, numeric) -> pd.DataFrame:
    """The frame a pipeline expects: raw columns for trees, cleaned text/floats for the linear path."""
    if is_tree(pipeline.named_steps["model"]):
        return frame
    return as_linear_input(frame, categorical, numeric)


def fit_threads(pipeline: Pipeline) -> AbstractContextManager:
    """One BLAS/OpenMP thread while a logistic pipeline fits; LightGBM keeps its own ``n_jobs``.

    lbfgs on the one-hot/spline matrix is a loop of matrix-vector products over a tall, thin
    matrix (about 80 columns): memory-bound, so a second OpenBLAS thread adds nothing and spins on a
    loaded machine. At 60,000 calls a fit took 1.6 s of CPU with one thread against 5.4 s with two
    (6.8 s wall against 15.6 s beside other work). It also makes the fit independent of the
    machine's core count: OpenBLAS splits the product's rows between its threads and sums the rows
    at the split differently, so two threads gave coefficients up to 1.7e-9 away from one thread's
    on a 2 M-call training window (metrics of a full run moved by about 1e-12). As
    forecasting/models/local.py does for its small fits.
    """
    if is_tree(pipeline.named_steps["model"]):
        return nullcontext()
    return threadpool_limits(1, user_api=None)


def fit_params(pipeline: Pipeline, n_categorical: int) -> dict:
    """Keyword arguments for ``pipeline.fit``: LightGBM is told which encoded columns are categories."""
    if is_tree(pipeline.named_steps["model"]):
        return {"model__categorical_feature": list(range(n_categorical))}
    return {}


def tune(
    pipeline: Pipeline,
    X: pd.DataFrame,
    y: np.ndarray,
    grid: Mapping[str, Sequence],
    n_splits: int,
    scoring: str,
    n_categorical: int,
    cv=None,
    groups: np.ndarray | None = None,
    fitted: dict | None = None,
) -> tuple[dict, pd.DataFrame]:
    """Grid-search classifier parameters with time-ordered folds; ``X`` must be sorted by call time.

    ``cv`` replaces the time-ordered folds (stratified or grouped K-fold for files without dates),
    with ``groups`` for a grouped one. ``fitted`` (a dict) receives every fold's fitted pipeline
    under :func:`fit_key`, for a later cross-validation on the same rows and folds to reuse.

    Returns
    -------
    best : dict
        Best parameters by mean fold score, keyed as the classifier names them.
    table : DataFrame
        One row per candidate: its parameters, mean and standard deviation of the fold scores.
    """
    if not grid:
        return {}, pd.DataFrame()
    if n_splits < 2:
        raise ConfigError(f"tuning.n_splits must be at least 2, got {n_splits}")
    search = GridSearchCV(
        pipeline,
        {f"model__{name}": list(values) for name, values in grid.items()},
        scoring=scoring if fitted is None else _keeping_fits(pipeline, scoring, list(grid), fitted),
        cv=TimeSeriesSplit(n_splits=n_splits) if cv is None else cv,
        refit=False,
        n_jobs=1,  # LightGBM already uses every core inside each fit
        error_score="raise",
    )
    try:
        extra = {} if groups is None else {"groups": groups}
        with fit_threads(pipeline):
            search.fit(X, y, **extra, **fit_params(pipeline, n_categorical))
    except (ValueError, TypeError) as error:
        raise ConfigError(f"tuning grid {dict(grid)} failed: {error}") from error
    table = pd.DataFrame(search.cv_results_)
    folds = [f"split{i}_test_score" for i in range(n_splits) if f"split{i}_test_score" in table]
    keep = [c for c in table.columns if c.startswith("param_")] + ["mean_test_score", "std_test_score"]
    names = {f"split{i}_test_score": f"fold{i}" for i in range(n_splits)}  # each fold's score
    table = table[keep + folds].rename(columns=lambda c: names.get(c, c.replace("param_model__", "")))
    best = {key.removeprefix("model__"): value for key, value in search.best_params_.items()}
    return best, table.sort_values("mean_test_score", ascending=False, ignore_index=True)


def _keeping_fits(pipeline: Pipeline, scoring: str, names: Sequence[str], fitted: dict):
    """The ``scoring`` scorer, also keeping each fold's fitted pipeline in ``fitted`` (:func:`fit_key`)."""
    score = get_scorer(scoring)

    def scorer(estimator, X_test, y_test, **kwargs):
        params = estimator.named_steps["model"].get_params()
        fitted[fit_key(pipeline, {name: params[name] for name in names}, X_test.index)] = estimator
        return score(estimator, X_test, y_test, **kwargs)

    return scorer


def fit_key(pipeline: Pipeline, params: Mapping, test_rows: pd.Index) -> tuple:
    """What identifies a fold's fit: the encoder's layout (for the linear path, which numbers are
    splined, decided on the rows it is built from), the classifier parameters, and the labels of the
    rows the fold validates on, which with the same splitter over the same calls fix the rows it was
    fitted on. Two fits with the same key are the same computation on the same data."""
    encoder = pipeline.named_steps["encode"]
    if isinstance(encoder, CallEncoder):
        layout = ("codes", tuple(encoder.categorical), tuple(encoder.numeric))
    else:  # one short transformer per feature (linear_preprocessor): each repr is complete
        layout = tuple((name, repr(part), tuple(columns)) for name, part, columns in encoder.transformers)
    return layout, tuple(sorted(params.items())), np.asarray(test_rows).tobytes()


def fit_classifier(
    pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, params: Mapping, n_categorical: int
) -> Pipeline:
    """A fitted copy of ``pipeline`` with ``params`` set on its classifier."""
    fitted = clone(pipeline).set_params(**{f"model__{k}": v for k, v in params.items()})
    with fit_threads(fitted):
        return fitted.fit(X, y, **fit_params(fitted, n_categorical))


class TreeModel:
    """A fitted LightGBM classifier and its encoder: raw scores and exact SHAP contributions.

    Saved as ``encoder.json`` and LightGBM's own text format, so loading it runs no pickled code.
    """

    kind = "lightgbm"

    def __init__(self, encoder: CallEncoder, booster: lgb.Booster):
        self.encoder = encoder
        self.booster = booster

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> TreeModel:
        return cls(pipeline.named_steps["encode"], pipeline.named_steps["model"].booster_)

    @property
    def feature_names(self) -> list[str]:
        return list(self.encoder.feature_names_)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        return self.encoder.transform(frame)

    def raw_score(self, encoded: np.ndarray) -> np.ndarray:
        """Log-odds of safe remote closure before calibration."""
        return self.booster.predict(encoded, raw_score=True)

    def contributions(self, encoded: np.ndarray) -> np.ndarray:
        """Exact SHAP values (TreeSHAP, LightGBM's ``pred_contrib``) per feature, in log-odds."""
        return self.booster.predict(encoded, pred_contrib=True)[:, :-1]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "encoder.json").write_text(json.dumps(self.encoder.to_dict()))
        self.booster.save_model(str(folder / "booster.txt"))

    @classmethod
    def load(cls, folder: Path) -> TreeModel:
        encoder = CallEncoder.from_dict(json.loads((folder / "encoder.json").read_text()))
        return cls(encoder, lgb.Booster(model_file=str(folder / "booster.txt")))


class LinearModel:
    """A fitted logistic-regression pipeline: raw scores and exact additive contributions.

    A logistic model's log-odds is a sum over features, so each feature's contribution is its
    coefficients times its encoded values' departure from their training means.
    Saved with joblib (a pickle): load it only from the project's own registry.
    """

    kind = "logistic"

    def __init__(
        self, pipeline: Pipeline, categorical: Sequence[str], numeric: Sequence[str], mean: np.ndarray
    ):
        self.pipeline = pipeline
        self.categorical = list(categorical)
        self.numeric = list(numeric)
        self.mean = mean
        # Which encoded columns belong to which feature: one transformer per feature, named after it.
        slices = pipeline.named_steps["encode"].output_indices_
        self._owner = np.zeros((len(mean), len(self.feature_names)))
        for j, name in enumerate(self.feature_names):
            self._owner[slices[name], j] = 1.0

    @classmethod
    def from_pipeline(
        cls, pipeline: Pipeline, categorical, numeric, train_frame: pd.DataFrame
    ) -> LinearModel:
        encoded = pipeline.named_steps["encode"].transform(as_linear_input(train_frame, categorical, numeric))
        return cls(pipeline, categorical, numeric, np.asarray(encoded).mean(axis=0))

    @property
    def feature_names(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        # The preprocessor's own output, each distinct value of a feature transformed once.
        return encode_by_value(self.pipeline.named_steps["encode"], frame, self.categorical, self.numeric)

    def raw_score(self, encoded: np.ndarray) -> np.ndarray:
        return self.pipeline.named_steps["model"].decision_function(encoded)

    def contributions(self, encoded: np.ndarray) -> np.ndarray:
        coef = self.pipeline.named_steps["model"].coef_[0]
        return ((encoded - self.mean) * coef) @ self._owner

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(
            {
                "pipeline": self.pipeline,
                "categorical": self.categorical,
                "numeric": self.numeric,
                "mean": self.mean,
            },
            folder / "linear.joblib",
        )

    @classmethod
    def load(cls, folder: Path) -> LinearModel:
        state = joblib.load(folder / "linear.joblib")
        return cls(state["pipeline"], state["categorical"], state["numeric"], state["mean"])


def wrap_fitted(
    pipeline: Pipeline, categorical, numeric, train_frame: pd.DataFrame
) -> TreeModel | LinearModel:
    """The serving wrapper for a fitted candidate pipeline."""
    if is_tree(pipeline.named_steps["model"]):
        return TreeModel.from_pipeline(pipeline)
    return LinearModel.from_pipeline(pipeline, categorical, numeric, train_frame)


def load_model(folder: Path, kind: str) -> TreeModel | LinearModel:
    loaders = {TreeModel.kind: TreeModel.load, LinearModel.kind: LinearModel.load}
    return loaders[kind](folder)
