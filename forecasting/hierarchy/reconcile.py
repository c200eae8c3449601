"""Forecast reconciliation: the projection that makes base forecasts of every node add up.

Given base forecasts ``y_hat`` of all ``n`` nodes, coherent forecasts are ``S P y_hat`` with ``P``
(``m`` leaves x ``n`` nodes) mapping them to leaf forecasts. Every method except bottom-up is the
generalised least squares projection of Wickramasuriya, Athanasopoulos & Hyndman (2019, JASA),

    P = (S' W^-1 S)^-1 S' W^-1,

with ``W`` the (assumed) covariance of the base forecast errors:

=================  ====================================================================
``bottom_up``      ``P = [0 | I]``: the leaves' own forecasts, summed
``ols``            ``W = I`` (Hyndman et al. 2011)
``wls_struct``     ``W = diag(S 1)``: each node's variance proportional to its number of leaves
``wls_var``        ``W = diag`` of each node's error variance
``mint_shrink``    ``W`` = the error covariance shrunk towards its diagonal (Schafer & Strimmer 2005)
=================  ====================================================================

as in R's ``hts``/``fable`` (``min_trace(method = "mint_shrink")``) and Nixtla's
hierarchicalforecast (``MinTrace``). Error moments are taken about zero, as they do: a forecast
that is biased has that bias in its error variance.
"""

from __future__ import annotations

import numpy as np

METHODS = ("bottom_up", "ols", "wls_struct", "wls_var", "mint_shrink")
NEEDS_ERRORS = ("wls_var", "mint_shrink")


def shrunk_covariance(errors: np.ndarray) -> tuple[np.ndarray, float]:
    """Schafer-Strimmer shrinkage of the error covariance towards its diagonal.

    Parameters
    ----------
    errors : ndarray of shape (n_obs, n_nodes)
        Joint forecast errors of every node (one row per origin and day).

    Returns
    -------
    (ndarray, float)
        ``lambda * D + (1 - lambda) * W1`` with ``W1 = E'E / n`` and ``D`` its diagonal, and the
        intensity ``lambda``, the estimated variance of the off-diagonal correlations over their
        sum of squares (clipped to [0, 1]); as ``shrink.estim`` in ``hts``.
    """
    e = np.asarray(errors, dtype=float)
    n = e.shape[0]
    if n < 2:
        raise ValueError("shrinkage needs at least 2 error vectors")
    covariance = e.T @ e / n
    sd = np.sqrt(np.diag(covariance))
    sd = np.where(sd > 0, sd, 1.0)  # a node with no error at all: no correlation to estimate
    standard = e / sd
    correlation = covariance / np.outer(sd, sd)
    # Variance of each sample correlation (Schafer & Strimmer 2005, eq. for Var(r_ij)).
    variance = (standard**2).T @ (standard**2) - (standard.T @ standard) ** 2 / n
    variance *= 1 / (n * (n - 1))
    off = ~np.eye(len(sd), dtype=bool)
    denominator = float(np.sum(correlation[off] ** 2))
    intensity = 1.0 if denominator == 0 else float(np.clip(variance[off].sum() / denominator, 0.0, 1.0))
    shrunk = intensity * np.diag(np.diag(covariance)) + (1 - intensity) * covariance
    return shrunk, intensity


def error_weights(method: str, S: np.ndarray, errors: np.ndarray | None = None) -> np.ndarray:
    """The matrix ``W`` a GLS method assumes (see the module docstring)."""
    n = S.shape[0]
    if method == "ols":
        return np.eye(n)
    if method == "wls_struct":
        return np.diag(S.sum(axis=1))
    if errors is None:
        raise ValueError(f"method {method!r} needs base forecast errors")
    errors = np.asarray(errors, dtype=float)
    if method == "wls_var":
        variance = np.mean(errors**2, axis=0)
        return np.diag(np.maximum(variance, _floor(variance)))
    if method == "mint_shrink":
        shrunk, _ = shrunk_covariance(errors)
        # A node with zero error variance would make W singular; give it the smallest positive one.
        diagonal = np.diag(shrunk)
        return shrunk + np.diag(np.maximum(diagonal, _floor(diagonal)) - diagonal)
    raise ValueError(f"unknown reconciliation method {method!r}; choose from {list(METHODS)}")


def projection(method: str, S: np.ndarray, errors: np.ndarray | None = None) -> np.ndarray:
    """The ``P`` (leaves x nodes) of ``method``: reconciled forecasts are ``S @ P @ y_hat``."""
    n, m = S.shape
    if method == "bottom_up":
        P = np.zeros((m, n))
        P[:, n - m :] = np.eye(m)  # the leaves are the last m nodes
        return P
    W = error_weights(method, S, errors)
    W_inv_S = np.linalg.solve(W, S)  # W^-1 S without forming W^-1
    return np.linalg.solve(S.T @ W_inv_S, W_inv_S.T)


def _floor(variance: np.ndarray) -> float:
    positive = variance[variance > 0]
    return float(positive.min()) if len(positive) else 1.0
