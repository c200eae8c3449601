"""What closure can ANY threshold policy deliver in the synthetic world at a given data size?
(issue 12, the synthetic-world targets, from the world's known truth)

The generator knows each call's true probability ``p`` of being safe to close remotely; the
benchmark counts a recommended call as unsafe when the 72-hour follow-up RECORDS a bad outcome
(``safe_remote == 0``, :mod:`disposition.evaluation`), which happens with probability
``q = sensitivity * (1 - p) + false_positive * p`` (:class:`disposition.synthetic_calls.FollowUp`).
An oracle serves the eligible calls (no hard rule excludes them) with the lowest ``q`` first.

For a test window of ``n`` calls the target is met when the one-sided 95 % Clopper-Pearson bound of
the recorded under-triage among served calls is within the limit overall AND in every configured
subgroup level (age band, sex, category) that receives recommendations. The Monte Carlo draws fresh
windows of ``n`` calls from a large pool of the same period (the latest 20 % of a pool drawn by the
committed generator; the calibration window is the 20 % before it, as the temporal split makes it)
and fresh outcomes for them, all at once: a window's calls fall into cells (subgroup cell x interval
of ``q`` between grid thresholds x recorded outcome) with the pool's frequencies, so one multinomial
draw per window gives every threshold's counts in every level. Policies, each a threshold on ``q``:

- ``overall only``: every eligible call below the threshold; only the overall bound is required
  (what the issue's targets would ask without subgroups);
- ``every level``: the same calls, and every level that receives any must show its bound;
- ``levels withheld``: the best set of withheld levels (a call is served only when its age band,
  sex and category are all served) with one threshold, chosen on one set of windows and
  re-estimated on fresh ones;
- ``per-cell thresholds``: a threshold for each age band x sex x category cell (or the cell
  withheld), which includes a threshold per level (the default procedure's structure: a call is
  served below all its levels' thresholds) and every withheld set; found by coordinate ascent and
  re-estimated on fresh windows;
- each of these ``+ calibration``: the policy must also be certified, before deployment, on a
  calibration window of the same size at ``delta`` (the procedure's own requirement: the exact
  binomial test against the limit rejects, overall and in every served level). The oracle knows
  which single policy to test, so it pays for no walk and no multiplicity; the two windows are
  independent, so the probability is the product.

The frontier at probability ``a`` is the largest closure share (of all test calls) at which the
policy passes with probability at least ``a``. All of 5 independent seeds pass with probability
``a ** 5``: 0.95 per seed gives 0.774, and 0.95 for all five needs 0.9898 per seed.

**What is proved and what is not.** For a FIXED set of calls and a fixed number ``m`` of them served,
serving the ``m`` with the lowest ``q`` makes the recorded unsafe count stochastically smallest
(couple each served call's outcome to a uniform draw: the ``i``-th lowest ``q`` is at most the
``i``-th lowest ``q`` of any other choice), so no choice of ``m`` calls has a higher chance of the
overall bound being within the limit: for ``overall only``, ranking by the truth is optimal, and
since a deployed rule is fixed before the test window, no procedure serving more than the frontier
share passes with probability ``a`` (up to the grid, 0.125 % of calls, and Monte Carlo error), in
this world at that size. With subgroup levels it is heuristic: the level constraints make the best
choice of calls combinatorial, and the coordinate-ascent search finds a good policy of the per-cell
family, not provably the best; the ``levels`` frontiers are what the best policy found achieves.
The ``+ calibration`` frontier assumes one pre-chosen test; a procedure testing several thresholds
(a fixed-sequence walk, or ``delta`` split over starts) could in principle certify some threshold at
least as loose with a higher probability than one pre-chosen test. That is not bounded here.

Run: ``python -m experiments.bench benchmark=disposition_feasibility``
(conf/benchmark/disposition_feasibility.yaml).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from disposition.threshold import largest_rejected_count
from experiments.harness import ROOT, BenchmarkReport

GROUPS = ("age_band", "sex", "category")


@dataclass(frozen=True)
class Window:
    """One period of the pool: each eligible call's cell and recorded-unsafe probability ``q``.

    ``calls`` counts every call of the period (ineligible ones too: closure is a share of all calls);
    ``cell`` indexes ``cells`` (one row per age band, sex and category combination present)."""

    q: np.ndarray
    cell: np.ndarray
    calls: int


@dataclass(frozen=True)
class Cells:
    """The subgroup cells and which level each belongs to (``incidence[level, cell]``)."""

    table: pd.DataFrame  # one row per cell: age_band, sex, category
    levels: list[tuple[str, str]]
    incidence: np.ndarray


def pool_windows(
    calls: pd.DataFrame, age_edges: Sequence[int], rules, followup
) -> tuple[Cells, Window, Window]:
    """The calibration and test periods of a pool of calls (the default temporal split's windows)."""
    from disposition.data import temporal_split
    from disposition.report import age_band_labels
    from disposition.safety import excluded_by_rules

    _, cal, test, _ = temporal_split(calls["call_time"])
    excluded, _ = excluded_by_rules(calls, rules)
    labels = pd.DataFrame(
        {
            "age_band": age_band_labels(calls["age"], age_edges),
            "sex": calls["sex"].astype(str).to_numpy(),
            "category": calls["category"].astype(str).to_numpy(),
        }
    )
    eligible = ~excluded
    table = labels[eligible].drop_duplicates().sort_values(list(GROUPS), ignore_index=True)
    index = pd.MultiIndex.from_frame(table).get_indexer(pd.MultiIndex.from_frame(labels))
    levels = [(g, str(v)) for g in GROUPS for v in sorted(table[g].unique())]
    incidence = np.array([(table[g] == v).to_numpy() for g, v in levels], dtype=bool)
    q = followup.observed_unsafe_probability(calls["p_safe_remote_true"].to_numpy(dtype=float))

    def window(mask: np.ndarray) -> Window:
        keep = mask & eligible
        return Window(q[keep], index[keep], int(mask.sum()))

    return Cells(table, levels, incidence), window(cal), window(test)


def share_thresholds(test: Window, max_share: float, grid: int) -> np.ndarray:
    """Thresholds on ``q`` that serve ``max_share / grid, 2 max_share / grid, ...`` of the test
    period's calls (all calls, eligible or not), lowest ``q`` first."""
    ranked = np.sort(test.q)
    served = np.round(np.linspace(max_share / grid, max_share, grid) * test.calls).astype(int)
    served = np.clip(served, 1, len(ranked))
    return ranked[served - 1]


def cell_probabilities(window: Window, thresholds: np.ndarray, n_cells: int) -> np.ndarray:
    """P(a call of the period is in cell c, has ``q`` in interval g, and is recorded unsafe / safe):
    shape ``(n_cells, grid, 2)``; the remainder (ineligible, or above the last threshold) is implied."""
    g = np.searchsorted(thresholds, window.q, side="left")
    inside = g < len(thresholds)
    flat = window.cell[inside] * len(thresholds) + g[inside]
    size = n_cells * len(thresholds)
    unsafe = np.bincount(flat, weights=window.q[inside], minlength=size)
    safe = np.bincount(flat, weights=1 - window.q[inside], minlength=size)
    return np.stack([unsafe, safe], axis=-1).reshape(n_cells, len(thresholds), 2) / window.calls


def draw_windows(
    probabilities: np.ndarray, n: int, replicates: int, rng: np.random.Generator, chunk: int = 250
) -> tuple[np.ndarray, np.ndarray]:
    """Served and unsafe counts of fresh windows of ``n`` calls: arrays ``(cells, replicates, grid)``
    holding, for each threshold, the calls of each cell at or below it and how many were unsafe."""
    cells, grid, _ = probabilities.shape
    flat = np.append(probabilities.ravel(), max(0.0, 1.0 - probabilities.sum()))
    flat = flat / flat.sum()
    served = np.empty((cells, replicates, grid), dtype=np.float32)
    unsafe = np.empty_like(served)
    for start in range(0, replicates, chunk):
        size = min(chunk, replicates - start)
        counts = rng.multinomial(n, flat, size=size)[:, :-1].reshape(size, cells, grid, 2)
        counts = np.cumsum(counts, axis=2)
        served[:, start : start + size] = (counts[..., 0] + counts[..., 1]).transpose(1, 0, 2)
        unsafe[:, start : start + size] = counts[..., 0].transpose(1, 0, 2)
    return served, unsafe


class BoundCheck:
    """Whether ``k`` unsafe of ``m`` served show a one-sided bound within the limit, by lookup."""

    def __init__(self, n_max: int, limit: float, delta: float):
        self.most = largest_rejected_count(np.arange(n_max + 1), limit, delta)

    def within(self, served: np.ndarray, unsafe: np.ndarray) -> np.ndarray:
        m = served.astype(np.int64)
        return (m > 0) & (unsafe <= self.most[m])


def pass_probability(
    served: np.ndarray,
    unsafe: np.ndarray,
    cells_served: np.ndarray,
    incidence: np.ndarray,
    check: BoundCheck,
    levels: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """For each threshold: P(the overall bound, and with ``levels`` every served level's, is within
    the limit) over the windows, and the mean number of calls served."""
    cells, replicates, grid = served.shape
    rows = [cells_served] + ([incidence[i] & cells_served for i in range(len(incidence))] if levels else [])
    weights = np.array(rows, dtype=np.float32)
    n = weights @ served.reshape(cells, -1)
    k = weights @ unsafe.reshape(cells, -1)
    ok = check.within(n[0], k[0])
    for i in range(1, len(rows)):
        ok &= (n[i] == 0) | check.within(n[i], k[i])
    return ok.reshape(replicates, grid).mean(axis=0), n[0].reshape(replicates, grid).mean(axis=0)


def withheld_sets(cells: Cells) -> list[tuple[np.ndarray, str]]:
    """Every choice of served levels (at least one per grouping): the cells it serves and its name."""
    per_group = []
    for group in GROUPS:
        names = [v for g, v in cells.levels if g == group]
        per_group.append([c for r in range(1, len(names) + 1) for c in itertools.combinations(names, r)])
    out = []
    for choice in itertools.product(*per_group):
        mask = np.ones(len(cells.table), dtype=bool)
        withheld = []
        for group, kept in zip(GROUPS, choice, strict=True):
            mask &= cells.table[group].isin(kept).to_numpy()
            all_levels = sorted(cells.table[group].unique())
            withheld += [f"{group}={v}" for v in all_levels if v not in kept]
        out.append((mask, ", ".join(withheld) or "none"))
    return out


def frontier(probability: np.ndarray, share: np.ndarray, level: float) -> tuple[float, float]:
    """The largest share whose pass probability is at least ``level``, and that probability."""
    ok = np.flatnonzero(probability >= level)
    if not len(ok):
        return 0.0, float("nan")
    best = ok[np.argmax(share[ok])]
    return float(share[best]), float(probability[best])


LEVELS = (0.5, 0.95, 0.99)


def counts_at(draws: tuple[np.ndarray, np.ndarray], cell_g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Served and unsafe counts ``(cells, replicates)`` when cell ``c`` serves its calls up to
    threshold ``cell_g[c]`` (-1: none)."""
    served, unsafe = draws
    cells, replicates, _ = served.shape
    index = (np.arange(cells)[:, None], np.arange(replicates)[None, :], np.maximum(cell_g, 0)[:, None])
    on = (cell_g >= 0)[:, None]
    return np.where(on, served[index], 0), np.where(on, unsafe[index], 0)


def level_pass(
    draws: tuple[np.ndarray, np.ndarray], cell_g: np.ndarray, incidence: np.ndarray, check: BoundCheck
) -> tuple[float, float, float]:
    """P(overall and every served level within the limit), the mean calls served, and the mean share
    of those constraints met (a smooth guide for the search when the probability is 0)."""
    n_c, k_c = counts_at(draws, cell_g)
    weights = incidence.astype(np.float32)
    n_l, k_l = weights @ n_c, weights @ k_c
    overall = check.within(n_c.sum(axis=0), k_c.sum(axis=0))
    levels = (n_l == 0) | check.within(n_l, k_l)
    ok = overall & levels.all(axis=0)
    guide = (overall.sum() + levels.sum()) / (len(overall) * (len(levels) + 1))
    return float(ok.mean()), float(n_c.sum(axis=0).mean()), float(guide)


def coordinate_scores(
    draws: tuple[np.ndarray, np.ndarray], cell_g: np.ndarray, i: int, incidence: np.ndarray, check: BoundCheck
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every threshold of cell ``i`` (-1, 0, ..., grid - 1), the others fixed at ``cell_g``: the
    pass probability, the mean calls served and the mean share of constraints met (as level_pass)."""
    served, unsafe = draws
    n_c, k_c = counts_at(draws, cell_g)
    n_c[i], k_c[i] = 0, 0
    weights = incidence.astype(np.float32)
    zero = np.zeros((served.shape[1], 1), dtype=served.dtype)
    own_n, own_k = np.hstack([zero, served[i]]), np.hstack([zero, unsafe[i]])  # (replicates, grid + 1)
    overall_n, overall_k = n_c.sum(axis=0)[:, None] + own_n, k_c.sum(axis=0)[:, None] + own_k
    member = incidence[:, i][:, None, None]
    level_n = (weights @ n_c)[:, :, None] + member * own_n[None]
    level_k = (weights @ k_c)[:, :, None] + member * own_k[None]
    overall = check.within(overall_n, overall_k)
    levels = (level_n == 0) | check.within(level_n, level_k)
    ok = overall & levels.all(axis=0)
    guide = (overall.mean(axis=0) + levels.mean(axis=1).sum(axis=0)) / (len(levels) + 1)
    return ok.mean(axis=0), overall_n.mean(axis=0), guide


def search_cell_thresholds(
    windows: Sequence[tuple[np.ndarray, np.ndarray]],
    incidence: np.ndarray,
    check: BoundCheck,
    level: float,
    start: np.ndarray,
    sweeps: int = 6,
) -> tuple[np.ndarray, bool]:
    """A threshold on the truth for each subgroup cell (-1: none served) with the largest closure
    whose pass probability (the product over ``windows``: the test window, and the calibration window
    when certifying) is at least ``level``, by coordinate ascent from ``start``; and whether it reaches
    ``level``. A heuristic search: it finds a good policy of this family, not provably the best."""
    cell_g = np.asarray(start, dtype=np.int64).copy()
    best = (-1, 0.0, 0.0)
    for _ in range(sweeps):
        moved = False
        for i in range(len(cell_g)):
            found = [coordinate_scores(w, cell_g, i, incidence, check) for w in windows]
            p = np.prod([f[0] for f in found], axis=0)
            served, guide = found[0][1], np.mean([f[2] for f in found], axis=0)
            feasible = p >= level
            # Feasible thresholds compete on closure; infeasible ones on probability, then the guide.
            key = np.where(feasible, 2.0 + served / max(served.max(), 1.0), p + 1e-3 * guide)
            j = int(np.argmax(key))
            candidate = (int(feasible[j]), float(served[j]) if feasible[j] else float(p[j]), float(key[j]))
            if candidate > best and j - 1 != cell_g[i]:
                cell_g[i], best, moved = j - 1, candidate, True
            elif candidate > best:
                best = candidate
        # Withholding a whole level at once: a single cell's move cannot empty a level.
        for member in incidence:
            trial = np.where(member, -1, cell_g)
            if (trial == cell_g).all():
                continue
            found = [level_pass(w, trial, incidence, check) for w in windows]
            p = float(np.prod([f[0] for f in found]))
            guide = float(np.mean([f[2] for f in found]))
            candidate = (1, found[0][1], 3.0) if p >= level else (0, p, p + 1e-3 * guide)
            if candidate > best:
                cell_g, best, moved = trial, candidate, True
        if not moved:
            break
    return cell_g, best[0] == 1


def size_frontier(
    cells: Cells,
    cal: Window,
    test: Window,
    n_calls: int,
    limit: float,
    delta: float,
    replicates: int,
    max_share: float,
    grid: int,
    rng: np.random.Generator,
) -> tuple[list[dict], pd.DataFrame]:
    """Frontier rows for one data size (test and calibration windows of 20 % of ``n_calls``), and
    the pass-probability curves."""
    n = int(round(0.2 * n_calls))
    thresholds = share_thresholds(test, max_share, grid)
    check = BoundCheck(n, limit, delta)
    p_test = cell_probabilities(test, thresholds, len(cells.table))
    p_cal = cell_probabilities(cal, thresholds, len(cells.table))
    # Two independent sets of windows: one chooses the withheld levels, the other re-estimates.
    choose = {name: draw_windows(p, n, replicates, rng) for name, p in (("test", p_test), ("cal", p_cal))}
    confirm = {name: draw_windows(p, n, replicates, rng) for name, p in (("test", p_test), ("cal", p_cal))}
    everything = np.ones(len(cells.table), dtype=bool)

    def curves(draws, mask, levels):
        test_p, test_n = pass_probability(*draws["test"], mask, cells.incidence, check, levels)
        cal_p, _ = pass_probability(*draws["cal"], mask, cells.incidence, check, levels)
        return test_p, test_p * cal_p, test_n / n

    rows, curve_rows = [], []
    for policy, levels in (("overall only", False), ("every level", True)):
        test_p, both_p, share = curves(confirm, everything, levels)
        curve_rows.append(
            pd.DataFrame(
                {
                    "calls": n_calls,
                    "policy": policy,
                    "share": share,
                    "p_test": test_p,
                    "p_test_and_calibration": both_p,
                }
            )
        )
        for certified, prob in ((False, test_p), (True, both_p)):
            for level in LEVELS:
                s, p = frontier(prob, share, level)
                rows.append(
                    {
                        "calls": n_calls,
                        "test window": n,
                        "policy": policy,
                        "certified": certified,
                        "probability": level,
                        "share": s,
                        "estimated": p,
                        "withheld": "none",
                    }
                )
    # Levels withheld: choose the set (and the threshold) on the first windows, report on the second.
    sets = withheld_sets(cells)
    chosen = {(c, lv): (0.0, None) for c in (False, True) for lv in LEVELS}
    for mask, name in sets:
        test_p, both_p, share = curves(choose, mask, True)
        for certified, prob in ((False, test_p), (True, both_p)):
            for level in LEVELS:
                s, _ = frontier(prob, share, level)
                if s > chosen[certified, level][0]:
                    chosen[certified, level] = (
                        s,
                        (mask, name, int(np.argmax(np.where(prob >= level, share, -1)))),
                    )
    for (certified, level), (_, pick) in chosen.items():
        if pick is None:
            rows.append(
                {
                    "calls": n_calls,
                    "test window": n,
                    "policy": "levels withheld",
                    "certified": certified,
                    "probability": level,
                    "share": 0.0,
                    "estimated": float("nan"),
                    "withheld": "all",
                }
            )
            continue
        mask, name, g = pick
        test_p, both_p, share = curves(confirm, mask, True)
        prob = both_p if certified else test_p
        rows.append(
            {
                "calls": n_calls,
                "test window": n,
                "policy": "levels withheld",
                "certified": certified,
                "probability": level,
                "share": float(share[g]),
                "estimated": float(prob[g]),
                "withheld": name,
            }
        )
    # A threshold per subgroup cell (covers a threshold per level, and withheld levels), searched on
    # the first windows from the best withheld-levels policy (or the overall-only one), re-estimated
    # on the second.
    overall_test, overall_both, overall_share = curves(choose, everything, False)
    for certified in (False, True):
        windows = [choose["test"], choose["cal"]] if certified else [choose["test"]]
        for level in LEVELS:
            # Starts: the overall-only policy, and the best withheld sets found at every probability.
            g, _ = _start_index(overall_both if certified else overall_test, overall_share, level)
            starts = [np.full(len(cells.table), g)]
            starts += [np.where(pick[0], pick[2], -1) for lv in LEVELS if (pick := chosen[certified, lv][1])]
            found = []
            for start in starts:
                cell_g, reached = search_cell_thresholds(windows, cells.incidence, check, level, start)
                served_choose = level_pass(choose["test"], cell_g, cells.incidence, check)[1]
                found.append((reached, served_choose if reached else 0.0, cell_g))
            reached, _, cell_g = max(found, key=lambda f: (f[0], f[1]))
            p_test, served, _ = level_pass(confirm["test"], cell_g, cells.incidence, check)
            p_cal = level_pass(confirm["cal"], cell_g, cells.incidence, check)[0] if certified else 1.0
            shares = level_shares(test, cells, thresholds, cell_g)
            rows.append(
                {
                    "calls": n_calls,
                    "test window": n,
                    "policy": "per-cell thresholds",
                    "certified": certified,
                    "probability": level,
                    "share": served / n if reached else 0.0,
                    "estimated": p_test * p_cal if reached else float("nan"),
                    "best found": ""
                    if reached
                    else f"p = {p_test * p_cal:.3f} at {_pct(served / n)} (re-estimated)",
                    "withheld": ", ".join(k for k, v in shares.items() if v == 0) or "none",
                    "level shares": ", ".join(f"{k}: {_pct(v)}" for k, v in shares.items() if v > 0),
                }
            )
    return rows, pd.concat(curve_rows, ignore_index=True)


def _start_index(probability: np.ndarray, share: np.ndarray, level: float) -> tuple[int, float]:
    """The threshold where the overall-only policy reaches ``level`` with the most closure (or, when it
    never does, where its probability is highest): the search's starting point."""
    ok = probability >= level
    index = int(np.argmax(np.where(ok, share, -1))) if ok.any() else int(np.argmax(probability))
    return index, float(share[index])


def level_shares(
    window: Window, cells: Cells, thresholds: np.ndarray, cell_g: np.ndarray
) -> dict[str, float]:
    """Share of each level's eligible calls (in the pool's period) that the cell thresholds serve."""
    limit = np.where(cell_g >= 0, thresholds[np.maximum(cell_g, 0)], -np.inf)
    served = window.q <= limit[window.cell]
    out = {}
    for (group, value), member in zip(cells.levels, cells.incidence, strict=True):
        mask = member[window.cell]
        out[f"{group}={value}"] = float(served[mask].mean()) if mask.any() else 0.0
    return out


def load_pool(workdir: Path, seed: int, n_calls: int, reuse: str | None) -> pd.DataFrame:
    """A pool of calls from the committed generator (or a file it wrote before, ``reuse``)."""
    from experiments.disposition_safety.run import _calls

    path = Path(reuse) if reuse else _calls(workdir, seed, n_calls)
    columns = ["call_time", "age", "sex", "category", "symptom_group", "p_safe_remote_true"]
    return pd.read_parquet(path, columns=columns)


def run(
    workdir: Path,
    sizes: Sequence[int],
    pool_calls: int,
    pool_seed: int,
    limit: float,
    delta: float,
    replicates: int,
    max_share: float,
    grid: int,
    seed: int,
    reuse_pool: str | None = None,
) -> BenchmarkReport:
    from disposition.safety import rules_from_mapping
    from disposition.synthetic_calls import FollowUp

    start = time.perf_counter()
    gen = OmegaConf.load(ROOT / "conf" / "disposition_generate.yaml")
    calls_cfg = OmegaConf.load(ROOT / "conf" / "calls" / "synthetic.yaml")
    age_edges = list(OmegaConf.load(ROOT / "conf" / "disposition.yaml").report.age_bands)
    rules = rules_from_mapping(OmegaConf.to_container(calls_cfg.standard_never_remote))
    followup = FollowUp(**OmegaConf.to_container(gen.followup))
    pool = load_pool(workdir, pool_seed, pool_calls, reuse_pool)
    cells, cal, test = pool_windows(pool, age_edges, rules, followup)
    del pool
    rng = np.random.default_rng(seed)
    rows, curves = [], []
    for n_calls in sizes:
        found, curve = size_frontier(
            cells, cal, test, int(n_calls), limit, delta, replicates, max_share, grid, rng
        )
        rows += found
        curves.append(curve)
        print(pd.DataFrame(found).drop(columns=["level shares"], errors="ignore").to_string(), flush=True)
    table = pd.DataFrame(rows)
    seconds = time.perf_counter() - start
    return _report(
        table,
        pd.concat(curves, ignore_index=True),
        cells,
        cal,
        test,
        sizes,
        limit,
        delta,
        replicates,
        pool_calls,
        pool_seed,
        seconds,
    )


POLICIES = (
    ("overall only", False),
    ("overall only", True),
    ("levels withheld", False),
    ("levels withheld", True),
    ("per-cell thresholds", False),
    ("per-cell thresholds", True),
)
SHARE_TARGET = 0.15


def _pct(value: float) -> str:
    return "" if not np.isfinite(value) else f"{100 * value:.1f} %"


def frontier_table(table: pd.DataFrame, level: float) -> pd.DataFrame:
    """One row per data size: the largest closure share each policy reaches with pass probability
    at least ``level`` (and, in brackets, that probability re-estimated on independent windows)."""
    out = []
    for calls, rows in table[table["probability"] == level].groupby("calls", sort=True):
        line = {"calls": f"{calls:,}", "test window": f"{int(rows['test window'].iloc[0]):,}"}
        for policy, certified in POLICIES:
            row = rows[(rows["policy"] == policy) & (rows["certified"] == certified)].iloc[0]
            name = policy + (" + calibration" if certified else "")
            shown = _pct(row["share"])
            line[name] = f"{shown} ({row['estimated']:.3f})" if np.isfinite(row["estimated"]) else shown
        out.append(line)
    return pd.DataFrame(out)


def _percent(text: str) -> float:
    return float(text.replace("%", "").strip()) / 100


def _md_row(path: Path, prefix: str) -> list[str] | None:
    """The cells of the first markdown table row of ``path`` that starts with ``prefix``."""
    for line in path.read_text().splitlines():
        if line.startswith(prefix):
            return [cell.strip() for cell in line.strip().strip("|").split("|")]
    return None


def measured_procedures(results: Path) -> pd.DataFrame:
    """The threshold procedures' measured closure, read from the committed results pages (nothing
    is re-run: seeds 1-5 are held out and have been seen)."""
    rows = []

    def row(calls, procedure, seeds, shares, met, of, oracle, source):
        rows.append(
            {
                "calls": f"{calls:,}",
                "procedure": procedure,
                "seeds": seeds,
                "mean closure": _pct(float(np.mean(shares))),
                "closure per seed": ", ".join(_pct(v) for v in shares),
                "seeds meeting the bound overall and in every served level": f"{met} of {of}",
                "same procedure on the oracle's probabilities (mean closure)": _pct(oracle),
                "source": source,
            }
        )

    for name, label in (
        ("disposition_safety", "per-level walk (default)"),
        ("disposition_safety_joint", "joint (family-wise)"),
    ):
        frame = pd.read_csv(results / f"{name}.csv")
        met = (
            (frame["test bound"] <= 0.01) & (frame["levels above limit"] == 0) & (frame["levels served"] > 0)
        )
        row(
            150_000,
            label,
            "held-out 1-5",
            frame["closure share"],
            int(met.sum()),
            len(frame),
            frame["oracle closure share"].mean(),
            f"{name}.md",
        )
    dev = pd.read_csv(results / "disposition_safety_dev_joint.csv", dtype={"seed": str})
    dev = dev[dev["split"] == "default"]
    big = dev["seed"] == "16:1000000"
    for variant, label in (
        ("joint confirm 0.3/levels 0.2, 3 starts", "joint (family-wise)"),
        ("3 starts, no levels", "3 planned starts, no level control"),
    ):
        for calls, seeds, pick in ((150_000, "development 11-15", ~big), (1_000_000, "development 16", big)):
            part = dev[pick & (dev["variant"] == variant)]
            met = (part["bound"] <= 0.01) & (part["above"] == 0) & (part["served"] > 0)
            row(
                calls,
                label,
                seeds,
                part["share"],
                int(met.sum()),
                len(part),
                part["oracle_share"].mean(),
                "disposition_safety_dev_joint.csv",
            )
    cells = _md_row(results / "disposition_safety_dev.md", "| 16:1000000 | max power + levels confirm 0.2 |")
    if cells:
        met = int(_percent(cells[3]) <= 0.01 and cells[5] == "0")
        row(
            1_000_000,
            "per-level walk (default)",
            "development 16",
            [_percent(cells[2])],
            met,
            1,
            _percent(cells[7]),
            "disposition_safety_dev.md",
        )
    scale = results / "disposition_scale.md"
    closure = _md_row(scale, "| Closure share at the deployed threshold, test window")
    oracle = _md_row(scale, "| Closure at the deployed thresholds / oracle's")
    bound = _md_row(scale, "| Test-window one-sided 95 % bound")
    levels = _md_row(scale, "| Subgroup levels receiving recommendations")
    if closure:
        met = int(bool(bound and levels and bound[-1] == "met" and levels[-1] == "met"))
        oracle_share = _percent(oracle[2].split("vs")[-1].strip(" )")) if oracle else float("nan")
        row(
            2_000_000,
            "per-level walk (default)",
            "scale benchmark seed",
            [_percent(closure[2])],
            met,
            1,
            oracle_share,
            "disposition_scale.md",
        )
    return pd.DataFrame(rows)


def _report(table, curves, cells, cal, test, sizes, limit, delta, replicates, pool_calls, pool_seed, seconds):
    from disposition.report import markdown_table

    measured = measured_procedures(ROOT / "experiments" / "results")

    def share_of(calls: int, policy: str, certified: bool, level: float = 0.95) -> float:
        pick = (
            (table["calls"] == calls)
            & (table["policy"] == policy)
            & (table["certified"] == certified)
            & (table["probability"] == level)
        )
        return float(table[pick]["share"].iloc[0])

    def best_levels(calls: int, level: float = 0.95) -> float:
        return max(
            share_of(calls, p, True, level) for p in ("every level", "levels withheld", "per-cell thresholds")
        )

    smallest = int(min(sizes))
    feasible = best_levels(smallest) >= SHARE_TARGET
    chosen = table[table["policy"].isin(["levels withheld", "per-cell thresholds"])][
        [
            "calls",
            "policy",
            "certified",
            "probability",
            "share",
            "estimated",
            "best found",
            "withheld",
            "level shares",
        ]
    ].copy()
    chosen[["level shares", "best found"]] = chosen[["level shares", "best found"]].fillna("")
    chosen["share"] = chosen["share"].map(_pct)
    chosen["estimated"] = chosen["estimated"].map(lambda v: "" if not np.isfinite(v) else f"{v:.3f}")
    chosen["calls"] = chosen["calls"].map(lambda v: f"{v:,}")
    lines = [
        "# Disposition safety: what closure is achievable at which data size (from the world's truth)",
        "",
        "Produced by `python -m experiments.bench benchmark=disposition_feasibility` "
        "(experiments/disposition_safety/feasibility.py; its docstring gives the argument). A pool of "
        f"{pool_calls:,} calls from the committed generator (conf/disposition_generate.yaml, "
        f"seed {pool_seed}, "
        "neither a benchmark nor a development seed) gives the calibration period (the 20 % of calls before "
        f"the latest 20 %, {cal.calls:,} calls) and the test period (the latest 20 %, "
        f"{test.calls:,} calls) as "
        f"the default temporal split cuts them. For each data size, {replicates:,} test windows of "
        "20 % of the "
        "calls (and as many calibration windows) are drawn afresh from those periods with fresh outcomes, "
        "twice (one set chooses a policy, the other re-estimates it). A recommended call counts as unsafe "
        "when the follow-up records a bad outcome (`safe_remote == 0`, what the safety benchmark counts), "
        "with probability `0.9 (1 - p) + 0.002 p` for its true probability `p` of being safe. The oracle "
        "serves eligible calls (no hard rule excludes them) lowest recorded-unsafe probability first; a "
        f"window passes when the one-sided Clopper-Pearson {100 * (1 - delta):.0f} % bound of recorded "
        f"under-triage is within {_pct(limit)} overall and, for the level policies, in every age band, sex "
        f"and category level that receives recommendations ({len(cells.levels)} levels, {len(cells.table)} "
        f"cells of eligible calls). Took {seconds:.0f} s (arithmetic and sampling, no model; a shared "
        "machine).",
        "",
        "Policies (each a threshold on the truth, fixed before the windows are drawn):",
        "",
        "- `overall only`: only the overall bound is required (the issue's target without subgroups); "
        "ranking by the truth is provably the best for it (docstring);",
        "- `levels withheld`: whole levels withheld (a call is served only when its age band, sex and "
        "category are all served), one threshold for the rest; the best of all 315 withheld sets;",
        "- `per-cell thresholds`: a threshold for each age band x sex x category cell (-1: withheld), which "
        "includes a threshold per level as the default procedure has, found by coordinate ascent from the "
        "best withheld set (heuristic: a good policy of the family, not provably the best);",
        "- `every level` (in the CSV only): one threshold for all eligible calls, every served level must "
        "pass. It never passes at any size here: some small level always receives a few calls;",
        f"- `+ calibration`: the same threshold(s) must ALSO be certified beforehand on a calibration window "
        f"of the same size (the exact binomial test against the limit rejects at delta {delta}, overall "
        "and in "
        "every served level), as the procedure itself requires. The oracle tests the one policy it knows to "
        "be good, so it pays for no walk and no multiplicity; the two windows are independent, so the "
        "probability is the product.",
        "",
        "**Five seeds.** The targets ask all of 5 independent seeds to pass. If each passes with probability "
        "p, all five do with p^5: p = 0.95 gives 0.774, p = 0.99 gives 0.951, p = 0.5 gives 0.031; 5 of 5 "
        "with probability 0.95 needs p >= 0.95^(1/5) = 0.9898. The tables give the largest closure share "
        "(of all test calls, eligible or not) at which p reaches 0.5, 0.95 and 0.99, and in brackets p as "
        f"re-estimated on the independent windows (Monte Carlo standard error about 0.005 at p = 0.95 with "
        f"{replicates:,} windows; the search over policies favours lucky estimates, which is why it is "
        "re-estimated). Grid: thresholds every 0.125 % of calls.",
        "",
    ]
    for level in LEVELS:
        lines += [
            f"## Largest closure share with per-seed pass probability >= {level}",
            "",
            markdown_table(frontier_table(table, level)),
            "",
        ]
    lines += [
        "## The policies behind the level rows",
        "",
        "`level shares`: the share of each served level's eligible calls (test period) that the policy "
        "serves; "
        "`best found`: when no policy of the search reached the probability, the most probable one it found.",
        "",
        markdown_table(chosen),
        "",
        "## The measured procedures on the same axes",
        "",
        "From the committed results pages (nothing re-run; seeds 1-5 are held out and have been seen). The "
        "oracle column is the procedure fed the true probabilities, not the frontier above. Closure is a "
        "share "
        "of all test-window calls in both.",
        "",
        markdown_table(measured),
        "",
        "## What this says",
        "",
        f"- At the default size ({smallest:,} calls, {int(0.2 * smallest):,}-call windows), certified on the "
        "calibration window with every served level within the limit, the best policy found closes "
        f"{_pct(best_levels(smallest))} of calls with per-seed probability 0.95 and "
        f"{_pct(best_levels(smallest, 0.5))} with probability 0.5 "
        + (
            f"(target {_pct(SHARE_TARGET)}): feasible for the oracle in this world; the procedures' "
            "shortfall "
            "is theirs."
            if feasible
            else f"(target {_pct(SHARE_TARGET)} in all 5 seeds): the target is **infeasible in this world at "
            "this size**, even for the truth (a Monte Carlo statement about this synthetic world under the "
            "stated assumptions, not a general proof)."
        ),
        "- Without any subgroup requirement, the test window alone allows "
        f"{_pct(share_of(smallest, 'overall only', False))} at p >= 0.95 "
        f"({_pct(share_of(smallest, 'overall only', False, 0.99))} at p >= 0.99, what 5 of 5 seeds "
        f"need); certified, {_pct(share_of(smallest, 'overall only', True))}.",
    ]
    for n_calls in sorted(sizes):
        lines.append(
            f"- {n_calls:,} calls, p >= 0.95 (0.99): certified with every served level "
            f"{_pct(best_levels(n_calls))} ({_pct(best_levels(n_calls, 0.99))}); certified, overall only "
            f"{_pct(share_of(n_calls, 'overall only', True))} "
            f"({_pct(share_of(n_calls, 'overall only', True, 0.99))})."
        )
    metrics = {"seconds": seconds}
    for calls in sizes:
        for policy, certified in POLICIES:
            for level in LEVELS:
                key = f"share_{policy.replace(' ', '_').replace('-', '_')}{'_certified' if certified else ''}"
                metrics[f"{key}_{int(calls)}_p{int(round(100 * level))}"] = share_of(
                    calls, policy, certified, level
                )
    return BenchmarkReport("\n".join(lines), metrics, {"": table, "curves": curves})
