"""Naming subgroup levels whose under-triage is significantly higher than the rest (Fisher, Holm)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact

from disposition.evaluation import SafetySettings
from disposition.report import subgroup_table
from disposition.subgroup_safety import higher_than_rest


def test_a_level_with_a_much_higher_rate_is_named_and_holm_corrects_over_all_levels():
    table = pd.DataFrame(
        {
            "group": ["age_band"] * 3 + ["sex"] * 2,
            "level": ["18-64", "65-84", "85+", "F", "M"],
            "recommended": [2_000, 2_000, 300, 2_150, 2_150],
            "unsafe_recommended": [10, 12, 15, 20, 17],
        }
    )
    out = higher_than_rest(table, delta=0.05)
    assert out["higher_than_rest"].tolist() == [False, False, True, False, False]
    raw = fisher_exact([[15, 285], [22, 3_978]], alternative="greater").pvalue
    # Holm: the smallest of five p-values is multiplied by five.
    assert out.loc[2, "higher_p_holm"] == pytest.approx(min(1.0, 5 * raw))


def test_levels_without_recommendations_are_not_tested():
    table = pd.DataFrame(
        {"group": ["sex", "sex"], "level": ["F", "M"], "recommended": [0, 500], "unsafe_recommended": [0, 3]}
    )
    out = higher_than_rest(table, delta=0.05)
    assert np.isnan(out["higher_p_holm"]).all() and not out["higher_than_rest"].any()


def test_subgroup_table_reports_one_sided_bounds_and_what_a_small_level_would_need():
    rng = np.random.default_rng(2)
    n = 6_000
    labels = {
        "sex": np.where(rng.uniform(size=n) < 0.5, "F", "M"),
        "age_band": np.where(np.arange(n) < 200, "85+", "18-64"),
    }
    y = (rng.uniform(size=n) > 0.004).astype(int)
    y[:200] = 1  # the small level has no unsafe call: only its size keeps its bound above 1 %
    p = rng.uniform(size=n)
    recommend = p > 0.3
    table = subgroup_table(labels, y, p, recommend, SafetySettings(limit=0.01, delta=0.05))
    old = table[(table.group == "age_band") & (table.level == "85+")].iloc[0]
    assert old.flagged and "at least 299 with none unsafe" in old.flag_reason
    assert {"higher_p_holm", "higher_than_rest"} <= set(table.columns)
