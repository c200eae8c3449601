"""Which subgroup levels have a higher under-triage than the rest, and what a small level would need.

On the held-out test window, each level that received recommendations is compared with the other
recommended calls of the same grouping (e.g. age 85+ against every other age band) by a one-sided
Fisher exact test of "more unsafe calls among its recommended calls than the rest"; the p-values
of all levels are Holm-corrected together, and a level is named as higher when its corrected
p-value is at most ``delta``. A level can be flagged (bound above the limit) without being higher
(too few calls to show anything), and higher without being flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact
from statsmodels.stats.multitest import multipletests


def higher_than_rest(table: pd.DataFrame, delta: float) -> pd.DataFrame:
    """``table`` (one row per group and level, with ``recommended`` and ``unsafe_recommended``) with
    ``higher_p_holm`` (NaN for levels without recommendations) and ``higher_than_rest`` added."""
    out = table.copy()
    raw = np.full(len(out), np.nan)
    for _, rows in out.groupby("group").groups.items():
        level = out.loc[rows]
        n_all, k_all = level["recommended"].sum(), level["unsafe_recommended"].sum()
        for i in rows:
            n, k = int(out.at[i, "recommended"]), int(out.at[i, "unsafe_recommended"])
            rest_n, rest_k = int(n_all - n), int(k_all - k)
            if n and rest_n:
                raw[out.index.get_loc(i)] = fisher_exact(
                    [[k, n - k], [rest_k, rest_n - rest_k]], alternative="greater"
                ).pvalue
    tested = ~np.isnan(raw)
    adjusted = np.full(len(out), np.nan)
    if tested.any():
        adjusted[tested] = multipletests(raw[tested], method="holm")[1]
    out["higher_p_holm"] = adjusted
    out["higher_than_rest"] = tested & (np.nan_to_num(adjusted, nan=1.0) <= delta)
    return out
