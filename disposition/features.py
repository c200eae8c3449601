"""Turning call records into model inputs, identically at training time and at prediction time.

Two encodings, one per model family:

- :class:`CallEncoder` for trees: each categorical column becomes its integer level code (LightGBM
  splits on categories natively) and each numeric column a float; unseen levels and missing values
  become NaN, which LightGBM routes down its learned missing-value branch. Its fitted state is a
  small JSON-able dict, so the served model needs no pickle.
- :func:`linear_preprocessor` for the logistic baseline: one-hot categories (unseen levels ignored)
  and splines or scaling for numbers, after imputing missing values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

TIME_FEATURES = ("hour", "day_of_week")
MISSING_LEVEL = "(missing)"
_SPLINE_MIN_LEVELS = 12  # numeric columns with fewer distinct values are scaled, not splined


def add_time_features(frame: pd.DataFrame, date_column: str, names: Sequence[str]) -> pd.DataFrame:
    """Return ``frame`` with the requested time-of-call features derived from ``date_column``.

    Unparseable or missing times give missing features rather than an error: at prediction time a
    call without a time is still scored.
    """
    if not names:
        return frame
    unknown = set(names) - set(TIME_FEATURES)
    if unknown:
        raise ValueError(f"unknown time feature(s) {sorted(unknown)}; choose from {TIME_FEATURES}")
    when = pd.to_datetime(frame[date_column], errors="coerce", format="mixed")
    derived = {
        "hour": when.dt.hour.astype("float32"),
        "day_of_week": when.dt.dayofweek.astype("float32"),
    }
    return frame.assign(**{name: derived[name] for name in names})


def categorical_strings(column: pd.Series) -> np.ndarray:
    """Categorical values as an object array of strings, missing values as None.

    Numbers coded as categories (e.g. area codes 1, 2, 3) are compared as their text, so a file
    that stores ``1`` and a request that sends ``"1"`` or ``1.0`` mean the same level.
    """
    codes, texts = _factorize_text(column)
    return np.append(np.asarray(texts, dtype=object), None)[codes]


def _factorize_text(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    # Format each distinct value once instead of every row (a million calls, a few dozen levels).
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    return codes, [level_text(value) for value in uniques]


def level_text(value) -> str:
    """A category value as text: whole floats lose their ".0" (1.0 -> "1")."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


class CallEncoder(TransformerMixin, BaseEstimator):
    """Encode call columns as a float32 matrix: category codes first, then numeric values.

    Parameters
    ----------
    categorical : sequence of str
        Columns whose values are labels (area, symptom group, ...).
    numeric : sequence of str
        Columns whose values are numbers (age, counts, 0/1 flags, hour).
    """

    def __init__(self, categorical: Sequence[str] = (), numeric: Sequence[str] = ()):
        self.categorical = categorical
        self.numeric = numeric

    def fit(self, X: pd.DataFrame, y=None) -> CallEncoder:
        self.levels_ = {}
        for name in self.categorical:
            text = categorical_strings(X[name])
            self.levels_[name] = sorted({v for v in pd.unique(text) if v is not None})
        self.feature_names_ = [*self.categorical, *self.numeric]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(X), len(self.feature_names_)), dtype=np.float32)
        for j, name in enumerate(self.categorical):
            codes, texts = _factorize_text(X[name])
            index = {level: i for i, level in enumerate(self.levels_[name])}
            # Unseen levels and missing values (code -1, the appended slot) become NaN.
            level_codes = np.array([index.get(t, np.nan) for t in texts] + [np.nan], dtype=np.float32)
            out[:, j] = level_codes[codes]
        for j, name in enumerate(self.numeric, start=len(self.categorical)):
            out[:, j] = pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(self.feature_names_, dtype=object)

    def to_dict(self) -> dict:
        """Fitted state as plain JSON types."""
        return {"categorical": list(self.categorical), "numeric": list(self.numeric), "levels": self.levels_}

    @classmethod
    def from_dict(cls, state: dict) -> CallEncoder:
        encoder = cls(state["categorical"], state["numeric"])
        encoder.levels_ = {k: list(v) for k, v in state["levels"].items()}
        encoder.feature_names_ = [*encoder.categorical, *encoder.numeric]
        return encoder


def as_linear_input(frame: pd.DataFrame, categorical: Sequence[str], numeric: Sequence[str]) -> pd.DataFrame:
    """Categoricals as text (missing as its own level), numbers as floats: what the one-hot path expects."""
    data = {
        name: np.where(pd.isna(v := categorical_strings(frame[name])), MISSING_LEVEL, v)
        for name in categorical
    }
    data.update({name: pd.to_numeric(frame[name], errors="coerce").astype(float) for name in numeric})
    return pd.DataFrame(data, index=frame.index)


def encode_by_value(
    preprocessor: ColumnTransformer, frame: pd.DataFrame, categorical: Sequence[str], numeric: Sequence[str]
) -> np.ndarray:
    """``preprocessor.transform(as_linear_input(frame, ...))`` as floats, each distinct value encoded once.

    Every transformer of :func:`linear_preprocessor` reads one feature and treats calls one by one
    (one-hot, median imputation, splines, scaling), so a call's encoded block depends only on its own
    value of that feature: the distinct values of each column (a few dozen levels, about a hundred
    ages, in a million calls) are transformed and the rows gathered, giving the same numbers without
    one-hot encoding a million strings. A preprocessor of any other layout is applied as it is.
    """
    names = [*categorical, *numeric]
    layout = {name: columns for name, _, columns in getattr(preprocessor, "transformers_", [])}
    one_each = set(layout) - {"remainder"} == set(names) and all(list(layout[n]) == [n] for n in names)
    if not one_each or not all(hasattr(preprocessor.named_transformers_[n], "transform") for n in names):
        return np.asarray(preprocessor.transform(as_linear_input(frame, categorical, numeric)), dtype=float)
    slices = preprocessor.output_indices_
    out = np.empty((len(frame), max(s.stop for s in slices.values())), dtype=float)
    for name in names:
        if name in categorical:
            codes, texts = _factorize_text(frame[name])
            # As as_linear_input: text per level, missing values as their own level.
            values = np.asarray([*texts, MISSING_LEVEL], dtype=object)
        else:
            number = pd.to_numeric(frame[name], errors="coerce").astype(float).to_numpy()
            codes, uniques = pd.factorize(number, use_na_sentinel=True)
            values = np.append(uniques, np.nan)
        block = preprocessor.named_transformers_[name].transform(pd.DataFrame({name: values}))
        # Code -1 (missing) picks the appended last value.
        out[:, slices[name]] = np.asarray(block, dtype=float)[np.where(codes < 0, len(values) - 1, codes)]
    return out


def linear_preprocessor(
    categorical: Sequence[str], numeric: Sequence[str], sample: pd.DataFrame
) -> ColumnTransformer:
    """One transformer per feature, named after it, so coefficients can be summed back per feature.

    Numbers with many distinct values (age) get a cubic spline so the baseline can bend with age;
    flags and small counts are imputed and scaled.
    """
    parts = []
    for name in categorical:
        parts.append(
            (name, OneHotEncoder(handle_unknown="ignore", min_frequency=20, sparse_output=False), [name])
        )
    for name in numeric:
        many = sample[name].nunique(dropna=True) >= _SPLINE_MIN_LEVELS
        shape = SplineTransformer(n_knots=6, degree=3, extrapolation="constant") if many else StandardScaler()
        parts.append((name, make_pipeline(SimpleImputer(strategy="median"), shape), [name]))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=True)
