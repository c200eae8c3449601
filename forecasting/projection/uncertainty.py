"""How far per-capita use can wander from its fitted trend over a long horizon (library layer).

The fitted trend of a few years of history says little about the next ten: trusts and areas differ
in how fast their use per person grows, growth changes from year to year, and now and then the
level jumps (a new telephone service, a counting change, a pandemic). The log rate's departure from
the fitted trend ``h`` years after the history is modelled as

    dev(h) = delta * h + sum_{k<=h} eps_k + sum_{k<=h} B_k * J_k

- ``delta ~ N(0, drift_sd^2)``: the path's own error in the yearly drift, so this part of the
  fan widens linearly with the horizon;
- ``eps_k ~ N(0, innovation_sd^2)``: random-walk innovations, widening as sqrt(h);
- ``B_k ~ Bernoulli(shift_probability)``, ``J_k ~ N(0, shift_sd^2)``: level shifts, a compound
  process whose variance also grows linearly with the horizon.

The median path stays on the fitted trend (no mean correction). The parameters are estimated from
real variation between trusts, areas and years by :func:`estimate_trend_uncertainty` (see
``experiments/projection/estimate_uncertainty.py`` and ``conf/uncertainty/estimated.yaml``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from mlops.errors import ConfigError

# A growth more than this many robust sds from the others is counted as a level shift.
SHIFT_Z = 3.5


@dataclass(frozen=True)
class TrendUncertainty:
    """Uncertainty of the per-capita log rate beyond the fitted trend, per year of horizon.

    Parameters
    ----------
    drift_sd : float
        Sd of a path's error in the yearly log growth (0.01: one point a year).
    innovation_sd : float
        Sd of the yearly random-walk innovation of the log rate.
    shift_probability : float
        Chance of a level shift in any one year.
    shift_sd : float
        Sd of a level shift's log size.
    """

    drift_sd: float = 0.0
    innovation_sd: float = 0.0
    shift_probability: float = 0.0
    shift_sd: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not np.isfinite(value) or value < 0 or value > 1:
                raise ConfigError(f"uncertainty.{name} must be between 0 and 1, got {value}")

    @classmethod
    def from_dict(cls, values: dict | None) -> TrendUncertainty:
        """From the config group ``uncertainty`` (keys as the fields; others, e.g. notes, ignored)."""
        values = values or {}
        return cls(**{name: float(values.get(name, 0.0) or 0.0) for name in cls.__dataclass_fields__})

    @property
    def active(self) -> bool:
        return any(value > 0 for value in asdict(self).values())

    def variance(self, horizon: np.ndarray | float) -> np.ndarray:
        """Variance of ``dev(h)`` at horizon ``h`` years (analytic)."""
        h = np.asarray(horizon, dtype=float)
        return (
            (self.drift_sd * h) ** 2
            + self.innovation_sd**2 * h
            + self.shift_probability * self.shift_sd**2 * h
        )

    def log_deviation(self, rng: np.random.Generator, n_paths: int, n_years: int) -> np.ndarray:
        """Simulated ``dev(h)`` for ``h = 1..n_years``, shape (n_paths, n_years)."""
        h = np.arange(1, n_years + 1, dtype=float)
        dev = rng.normal(0.0, 1.0, size=(n_paths, 1)) * self.drift_sd * h[None, :]
        dev = dev + np.cumsum(rng.normal(0.0, self.innovation_sd, size=(n_paths, n_years)), axis=1)
        shifts = (rng.random((n_paths, n_years)) < self.shift_probability) * rng.normal(
            0.0, self.shift_sd, size=(n_paths, n_years)
        )
        return dev + np.cumsum(shifts, axis=1)


@dataclass(frozen=True)
class UncertaintyEstimate:
    """The estimated parameters and the evidence behind them."""

    parameters: TrendUncertainty
    details: dict[str, float]
    growth: pd.DataFrame  # unit, source, year, growth, residual, shift


def per_capita_growth(calls: pd.DataFrame, weighted_population: pd.Series, source: str) -> pd.DataFrame:
    """Yearly log growth of calls per age-weighted resident: ``unit, source, year, growth``.

    ``calls``: ``unit, year, calls`` (complete years); ``weighted_population``: the age-weighted
    population by year (the same for every unit when areas have no populations of their own).
    """
    table = calls.pivot_table(index="year", columns="unit", values="calls", aggfunc="sum").sort_index()
    log_pop = np.log(weighted_population.reindex(table.index).astype(float))
    growth = np.log(table).diff().sub(log_pop.diff(), axis=0).iloc[1:]
    long = growth.reset_index().melt(id_vars="year", var_name="unit", value_name="growth").dropna()
    return long.assign(source=source)[["unit", "source", "year", "growth"]]


def estimate_trend_uncertainty(growth: pd.DataFrame, shift_z: float = SHIFT_Z) -> UncertaintyEstimate:
    """Estimate :class:`TrendUncertainty` from per-capita log growth of several units and years.

    Parameters
    ----------
    growth : DataFrame
        ``unit, source, year, growth``. Units of one ``source`` are compared with each other in the
        same years (e.g. the AmbSYS trusts, or the areas of one trust); a unit with several years
        also gives the year-to-year variation.

    Method (moments, pooled over sources by degrees of freedom):

    1. Level shifts: each growth's residual from its unit's mean and its year's mean within the
       source; a residual beyond ``shift_z`` robust sds (1.4826 x median absolute residual) is a
       shift. ``shift_probability`` is the Jeffreys estimate (k + 0.5) / (n + 1) over the n
       unit-years; ``shift_sd`` the root mean square of the detected shifts, or, when none is
       found, the detection threshold itself (a shift any smaller already shows in the innovations).
    2. Innovations: the pooled within-unit variance of growth around the unit's mean (shifts
       left out), from units with at least three years.
    3. Drift: between units of a source in the same years, the variance of the units' mean growth
       minus the part the innovations explain (``innovation_var / n_years``), floored at zero.
    """
    g = growth.copy()
    g["residual"] = np.nan
    for _, part in g.groupby("source"):
        grand = part["growth"].mean()
        unit_mean = part.groupby("unit")["growth"].transform("mean")
        year_mean = part.groupby("year")["growth"].transform("mean")
        multi = part.groupby("unit")["year"].transform("nunique") > 1
        if part["unit"].nunique() == 1:  # one unit: its years against its own mean
            resid = part["growth"] - unit_mean
        else:  # units with one year are compared with the year's mean across units only
            two_way = part["growth"] - unit_mean - year_mean + grand
            resid = np.where(multi, two_way, part["growth"] - year_mean)
        g.loc[part.index, "residual"] = resid
    robust_sd = 1.4826 * float(np.median(np.abs(g["residual"])))
    g["shift"] = np.abs(g["residual"]) > shift_z * robust_sd
    n, k = len(g), int(g["shift"].sum())
    shift_probability = (k + 0.5) / (n + 1)
    shift_sd = float(np.sqrt(np.mean(g.loc[g["shift"], "residual"] ** 2))) if k else shift_z * robust_sd

    kept = g[~g["shift"]]
    ss_within, df_within = 0.0, 0
    for _, part in kept.groupby(["source", "unit"]):
        if len(part) >= 3:
            ss_within += float(((part["growth"] - part["growth"].mean()) ** 2).sum())
            df_within += len(part) - 1
    innovation_var = ss_within / df_within if df_within else float(kept["residual"].var())

    drift_num, drift_df = 0.0, 0
    for _, part in kept.groupby("source"):
        means = part.groupby("unit")["growth"].agg(["mean", "size"])
        if len(means) < 3:
            continue
        between = float(means["mean"].var(ddof=1))
        component = max(between - innovation_var * float(np.mean(1 / means["size"])), 0.0)
        drift_num += component * (len(means) - 1)
        drift_df += len(means) - 1
    drift_var = drift_num / drift_df if drift_df else 0.0

    parameters = TrendUncertainty(
        drift_sd=float(np.sqrt(drift_var)),
        innovation_sd=float(np.sqrt(innovation_var)),
        shift_probability=float(shift_probability),
        shift_sd=float(shift_sd),
    )
    details = {
        "unit_years": n,
        "shifts_detected": k,
        "robust_residual_sd": robust_sd,
        "innovation_df": df_within,
        "drift_df": drift_df,
    }
    return UncertaintyEstimate(parameters, details, g)


def vintage_population_sd(vintages: dict[str, pd.Series], from_year: int, horizons: range) -> float:
    """Spread of the projected population change between projection vintages, as a fraction of it.

    ``vintages``: age-weighted population by year from each vintage (e.g. ONS 2018- and 2020-based
    principal). For each horizon the change from ``from_year`` is compared between vintages; the
    relative spread (sample sd over vintages, divided by the mean change) is averaged over horizons.
    With two vintages the sd is ``|a - b| / sqrt(2)``.
    """
    ratios = []
    for h in horizons:
        changes = np.array([s.loc[from_year + h] / s.loc[from_year] - 1 for s in vintages.values()])
        if np.mean(changes) != 0:
            ratios.append(np.std(changes, ddof=1) / abs(np.mean(changes)))
    return float(np.mean(ratios))
