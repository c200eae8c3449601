"""The feasibility frontier's machinery (experiments/disposition_safety/feasibility.py): the Monte
Carlo windows, the bound check, the pass probabilities and the policy search, on small worlds whose
answers are known exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta, binom

from experiments.disposition_safety import feasibility as f
from experiments.harness import ROOT


def _cells(levels_per_cell: list[tuple[str, str, str]]) -> f.Cells:
    table = pd.DataFrame(levels_per_cell, columns=list(f.GROUPS))
    levels = [(g, v) for g in f.GROUPS for v in sorted(table[g].unique())]
    incidence = np.array([(table[g] == v).to_numpy() for g, v in levels], dtype=bool)
    return f.Cells(table, levels, incidence)


def test_bound_check_is_the_clopper_pearson_bound():
    check = f.BoundCheck(2_000, 0.01, 0.05)
    m = np.array([100, 299, 300, 1_000, 2_000, 2_000, 1_500])
    k = np.array([0, 0, 0, 4, 12, 13, 8])
    upper = np.where(k < m, beta.ppf(0.95, k + 1, m - k), 1.0)
    assert (check.within(m, k) == (upper <= 0.01)).all()
    assert not check.within(np.array([0]), np.array([0]))[0]  # nothing served shows nothing


def test_window_counts_are_cumulative_and_add_up():
    rng = np.random.default_rng(1)
    window = f.Window(q=rng.uniform(0, 0.02, 5_000), cell=rng.integers(0, 3, 5_000), calls=8_000)
    thresholds = f.share_thresholds(window, 0.5, 20)
    probabilities = f.cell_probabilities(window, thresholds, 3)
    # Every eligible call is at or below the last threshold once it serves all of them (5,000 of 8,000).
    assert probabilities.sum() == pytest.approx(min(0.5 * 8_000, 5_000) / 8_000, abs=1e-3)
    served, unsafe = f.draw_windows(probabilities, 10_000, 50, rng, chunk=20)
    assert served.shape == (3, 50, 20)
    assert (np.diff(served, axis=2) >= 0).all() and (unsafe <= served).all()
    assert served[:, :, -1].sum(axis=0).max() <= 10_000


def test_pass_probability_matches_the_exact_binomial_mixture():
    """One cell of calls with the same q: served ~ Binomial(n, eligible share), unsafe ~ Binomial(served,
    q), so the pass probability is an exact mixture."""
    q, n, share = 0.004, 3_000, 0.6
    window = f.Window(q=np.full(6_000, q), cell=np.zeros(6_000, dtype=int), calls=10_000)
    thresholds = np.array([q])
    probabilities = f.cell_probabilities(window, thresholds, 1)
    served, unsafe = f.draw_windows(probabilities, n, 4_000, np.random.default_rng(2))
    check = f.BoundCheck(n, 0.01, 0.05)
    cells = _cells([("18-64", "F", "C3")])
    estimate, mean_served = f.pass_probability(served, unsafe, np.array([True]), cells.incidence, check, True)
    m = np.arange(n + 1)
    exact = float((binom.pmf(m, n, share) * binom.cdf(check.most[m], m, q)).sum())
    assert estimate[0] == pytest.approx(exact, abs=3 * np.sqrt(exact * (1 - exact) / 4_000) + 1e-3)
    assert mean_served[0] == pytest.approx(n * share, rel=0.01)


def test_the_search_withholds_a_cell_that_always_fails_and_serves_the_safe_one():
    """Two cells: one with q far above the limit (any level it touches fails), one far below."""
    cells = _cells([("18-64", "F", "C3"), ("85+", "M", "C2")])
    q = np.r_[np.full(4_000, 0.001), np.full(4_000, 0.05)]
    cell = np.r_[np.zeros(4_000, dtype=int), np.ones(4_000, dtype=int)]
    window = f.Window(q=q, cell=cell, calls=8_000)
    thresholds = np.array([0.001, 0.05])
    draws = f.draw_windows(f.cell_probabilities(window, thresholds, 2), 8_000, 200, np.random.default_rng(3))
    check = f.BoundCheck(8_000, 0.01, 0.05)
    cell_g, reached = f.search_cell_thresholds([draws], cells.incidence, check, 0.95, np.array([1, 1]))
    assert reached
    assert cell_g.tolist() == [0, -1]  # the safe cell in full, the unsafe one withheld
    p, served, _ = f.level_pass(draws, cell_g, cells.incidence, check)
    assert p >= 0.95 and served == pytest.approx(4_000, rel=0.05)


def test_withheld_sets_serve_at_least_one_level_per_grouping():
    cells = _cells([("18-64", "F", "C3"), ("85+", "M", "C2"), ("18-64", "M", "C2")])
    sets = f.withheld_sets(cells)
    assert len(sets) == 3 * 3 * 3  # two levels per grouping: 3 non-empty choices each
    names = [name for _, name in sets]
    assert "none" in names
    mask = dict((name, mask) for mask, name in sets)["age_band=85+"]
    assert mask.tolist() == [True, False, True]


def test_measured_procedures_are_read_from_the_committed_pages():
    measured = f.measured_procedures(ROOT / "experiments" / "results")
    committed = pd.read_csv(ROOT / "experiments" / "results" / "disposition_safety.csv")
    default = measured[
        (measured["procedure"] == "per-level walk (default)") & (measured["calls"] == "150,000")
    ]
    assert default["mean closure"].iloc[0] == f"{100 * committed['closure share'].mean():.1f} %"
    assert {"150,000", "1,000,000", "2,000,000"} <= set(measured["calls"])
