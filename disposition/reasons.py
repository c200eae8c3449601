"""Reasons a clinician can read: the features that moved each call's score most, and which way.

Two ways to get per-feature contributions (log-odds of safe remote closure):

- **exact**: the model's own per-call attribution (LightGBM ``pred_contrib``, i.e. TreeSHAP; or
  coefficient x value for the logistic baseline). TreeSHAP costs far more than a prediction.
- **fast**: a lookup table of the exact contributions averaged by feature value, learned on
  held-out calls at training time (:class:`ContributionTable`). Exact for additive effects;
  interactions (e.g. falls at 75+) are shared out as their average. Used for large batches, where
  exact TreeSHAP would dominate scoring time; its agreement with exact reasons is reported in the
  model card.

Reasons read like ``"symptom_group=falls (lowers); age=91 (lowers); able_to_walk=1 (raises)"``:
"raises" means the value makes safe remote closure more likely.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from disposition.features import level_text

_MAX_BINS = 32


class ContributionTable:
    """Average exact contribution of each feature as a function of its own (encoded) value.

    Parameters
    ----------
    n_categorical : int
        The first ``n_categorical`` encoded columns are category codes; the rest are numbers.
    """

    def __init__(self, n_categorical: int):
        self.n_categorical = n_categorical

    def fit(self, encoded: np.ndarray, contributions: np.ndarray) -> ContributionTable:
        self.edges_, self.values_ = [], []
        for j in range(encoded.shape[1]):
            x = encoded[:, j]
            edges = self._edges(x, categorical=j < self.n_categorical)
            slot = self._slot(x, edges)
            sums = np.bincount(slot, weights=contributions[:, j], minlength=len(edges) + 2)
            counts = np.bincount(slot, minlength=len(edges) + 2)
            # Values never seen in the sample contribute nothing rather than a guess.
            self.edges_.append(edges)
            self.values_.append(np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0))
        return self

    def lookup(self, encoded: np.ndarray) -> np.ndarray:
        out = np.empty(encoded.shape, dtype=float)
        for j, (edges, values) in enumerate(zip(self.edges_, self.values_, strict=True)):
            out[:, j] = values[self._slot(encoded[:, j], edges)]
        return out

    @staticmethod
    def _edges(x: np.ndarray, categorical: bool) -> np.ndarray:
        present = x[~np.isnan(x)]
        if categorical or len(np.unique(present)) <= _MAX_BINS:
            return np.unique(present)
        return np.unique(np.quantile(present, np.linspace(0, 1, _MAX_BINS + 1)[1:-1]))

    @staticmethod
    def _slot(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
        """Bin of each value (values equal to an edge share its bin); the last slot holds NaN."""
        slot = np.searchsorted(edges, x, side="right")
        return np.where(np.isnan(x), len(edges) + 1, slot)

    def to_dict(self) -> dict:
        return {
            "n_categorical": self.n_categorical,
            "edges": [e.tolist() for e in self.edges_],
            "values": [v.tolist() for v in self.values_],
        }

    @classmethod
    def from_dict(cls, state: dict) -> ContributionTable:
        table = cls(state["n_categorical"])
        table.edges_ = [np.asarray(e, dtype=float) for e in state["edges"]]
        table.values_ = [np.asarray(v, dtype=float) for v in state["values"]]
        return table


def display_values(
    frame: pd.DataFrame, names: Sequence[str], categorical: Sequence[str]
) -> list[tuple[np.ndarray, list[str]]]:
    """Each feature's values as (integer id per call, text per id); missing values get id -1.

    Categories show as their text; numbers without noise digits (``age=91``, ``score=0.25``).
    """
    shown = []
    for name in names:
        if name in categorical:
            codes, uniques = pd.factorize(frame[name], use_na_sentinel=True)
            texts = [level_text(u) for u in uniques]
        else:
            number = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
            codes, uniques = pd.factorize(number, use_na_sentinel=True)
            texts = [f"{u:.0f}" if float(u).is_integer() else f"{u:.3g}" for u in uniques]
        shown.append((codes, texts))
    return shown


def top_reasons(
    contributions: np.ndarray, shown: list[tuple[np.ndarray, list[str]]], names: Sequence[str], top_k: int
) -> np.ndarray:
    """One reason string per call from its ``top_k`` largest absolute contributions.

    Each distinct combination of (feature, value, direction) is formatted once, so a million calls
    cost a few thousand string operations rather than millions.
    """
    n, n_features = contributions.shape
    if n == 0:
        return np.array([], dtype=object)
    k = min(top_k, n_features)
    rows = np.arange(n)[:, None]
    size = np.abs(contributions)
    top = np.argpartition(-size, k - 1, axis=1)[:, :k] if k < n_features else np.tile(np.arange(k), (n, 1))
    top = top[rows, np.argsort(-size[rows, top], axis=1, kind="stable")]
    raises = contributions[rows, top] > 0
    # A (feature, value, direction) triple is one integer: feature offset + 2 * value id + direction.
    vocab = [[*texts, "missing"] for _, texts in shown]
    sizes = np.array([len(v) for v in vocab])
    offsets = np.r_[0, np.cumsum(sizes * 2)[:-1]]
    value_ids = np.empty((n, n_features), dtype=np.int32)
    for j, (codes, _) in enumerate(shown):
        value_ids[:, j] = np.where(codes < 0, sizes[j] - 1, codes)  # -1 -> the "missing" slot
    phrase = offsets[top] + 2 * value_ids[rows, top].astype(np.int64) + raises
    combos, inverse = _unique_rows(phrase, int(sizes.sum() * 2))
    feature_of = np.repeat(np.arange(n_features), sizes * 2)
    texts = []
    for combo in combos:
        parts = []
        for key in combo:
            j = feature_of[key]
            local = key - offsets[j]
            parts.append(f"{names[j]}={vocab[j][local // 2]} ({'raises' if local % 2 else 'lowers'})")
        texts.append("; ".join(parts))
    return np.asarray(texts, dtype=object)[inverse]


def _unique_rows(keys: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a small integer matrix and each row's index among them."""
    bits = max(int(n_keys).bit_length(), 1)
    if bits * keys.shape[1] <= 63:  # pack each row into one integer: a 1-D unique is much faster
        packed = np.zeros(len(keys), dtype=np.int64)
        for i in range(keys.shape[1]):
            packed |= keys[:, i] << (bits * i)
        uniques, inverse = np.unique(packed, return_inverse=True)
        combos = np.stack([(uniques >> (bits * i)) & ((1 << bits) - 1) for i in range(keys.shape[1])], axis=1)
        return combos, inverse.ravel()
    combos, inverse = np.unique(keys, axis=0, return_inverse=True)
    return combos, inverse.ravel()


def agreement(exact: np.ndarray, fast: np.ndarray, top_k: int) -> dict[str, float]:
    """How often fast reasons name the same features as exact ones (top feature; share of top-k)."""
    k = min(top_k, exact.shape[1])
    top_exact = np.argsort(-np.abs(exact), axis=1, kind="stable")[:, :k]
    top_fast = np.argsort(-np.abs(fast), axis=1, kind="stable")[:, :k]
    overlap = [len(set(a) & set(b)) / k for a, b in zip(top_exact, top_fast, strict=True)]
    return {
        "calls": float(len(exact)),
        "top1": float(np.mean(top_exact[:, 0] == top_fast[:, 0])) if len(exact) else float("nan"),
        "top_k_overlap": float(np.mean(overlap)) if len(exact) else float("nan"),
    }
