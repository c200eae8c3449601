"""One way to fit the small Poisson GLMs of this package, quickly on a busy machine."""

from __future__ import annotations

import numpy as np
import statsmodels.api as sm
from threadpoolctl import threadpool_limits  # installed with scikit-learn


def fit_poisson(y: np.ndarray, design: np.ndarray, offset: np.ndarray | None = None):
    """Fit a Poisson GLM (log link) by IRLS and return the statsmodels results.

    These designs have at most a few thousand rows and tens of columns: one BLAS thread solves them
    in milliseconds, while several threads competing with other jobs for two cores (a Hydra multirun,
    CI, a colleague's training run) made the same fit a hundred times slower. QR is used for the
    weighted least-squares steps because it is cheaper than the default pseudo-inverse.
    """
    with threadpool_limits(1, user_api="blas"):
        model = sm.GLM(y, design, family=sm.families.Poisson(), offset=offset)
        return model.fit(wls_method="qr")
