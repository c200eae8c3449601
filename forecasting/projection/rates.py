"""Per-capita call rates by age band and their trend: a Poisson GLM on annual history.

Annual calls in area ``a`` and year ``y`` are modelled as ``sum_b pop[a, b, y] * rate[b, y]`` with
``log rate[b, y] = level[b] (+ area effect) + trend * (y - ref_year)``. Where the history carries age
(a column ``age_band`` in the calls), ``level[b]`` is estimated per band; where it does not, the
relative rates between bands come from the literature (``rate_ratio``) and only the overall level and
the trend are estimated, with the age-weighted population as the GLM offset. Uncertainty comes from
the GLM covariance, inflated by the Pearson dispersion when the years scatter more than Poisson.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.projection.glm import fit_poisson
from mlops.errors import ConfigError, DataValidationError


@dataclass(frozen=True)
class RateDraws:
    """Parameter draws for one area: log rate by band at ``ref_year`` and the yearly log trend.

    Attributes
    ----------
    log_rate : ndarray, shape (n_draws, n_bands)
        Log calls per resident per year by band, at the model's reference year.
    trend : ndarray, shape (n_draws,)
        Log change of every band's rate per year.
    """

    log_rate: np.ndarray
    trend: np.ndarray


class AgeRateModel:
    """Calls per resident by age band with a log-linear trend over years.

    Parameters
    ----------
    rate_ratio : mapping of str to float, optional
        Relative rates by band (e.g. 85-89 seven times 45-49), used when the history has no age.
    area_effects : bool
        Give each history area its own level (e.g. when area populations are only approximate);
        an area without history then gets the average level, weighted by recent calls.
    """

    def __init__(self, rate_ratio: Mapping[str, float] | None = None, area_effects: bool = False):
        self.rate_ratio = rate_ratio
        self.area_effects = area_effects

    def fit(self, calls: pd.DataFrame, population: pd.DataFrame) -> AgeRateModel:
        """Fit on annual calls ``area, year, calls`` (optionally by ``age_band``) and a population table.

        Raises
        ------
        DataValidationError
            When an area-year of calls has no population, or too few area-years to estimate a trend.
        """
        by_band = "age_band" in calls.columns
        if not by_band and not self.rate_ratio:
            raise ConfigError(
                "the history has no age_band column, so rates.rate_ratio must give relative rates by band"
            )
        bands = list(dict.fromkeys(population["age_band"]))
        if not by_band and set(self.rate_ratio) != set(bands):
            raise ConfigError(
                f"rates.rate_ratio bands {sorted(self.rate_ratio)} differ from the population bands {bands}"
            )
        keys = ["area", "year", "age_band"] if by_band else ["area", "year"]
        table = calls.groupby(keys, as_index=False)["calls"].sum()
        if by_band:
            table = table.merge(population, on=keys, how="left")
            exposure = table["population"].to_numpy()
        else:
            weighted = population.assign(
                population=population["population"] * population["age_band"].map(self.rate_ratio)
            )
            exposure_table = weighted.groupby(["area", "year"], as_index=False)["population"].sum()
            table = table.merge(exposure_table, on=keys, how="left")
            exposure = table["population"].to_numpy()
        if np.isnan(exposure).any():
            row = table[np.isnan(exposure)].iloc[0]
            raise DataValidationError(
                f"history area {row['area']!r} has calls in {row['year']} but no population for that year; "
                "give the history a population table covering every area and year"
            )
        if (exposure <= 0).any():
            row = table[exposure <= 0].iloc[0]
            raise DataValidationError(f"history area {row['area']!r} has zero population in {row['year']}")

        self.bands_ = bands
        self.areas_ = sorted(table["area"].unique())
        self.by_band_ = by_band
        years = table["year"].to_numpy(dtype=float)
        self.ref_year_ = float(np.mean(np.unique(years)))  # centred, so level and trend barely correlate
        self.last_year_ = int(years.max())
        self.first_year_ = int(years.min())
        design, self.names_ = self._design(table)
        if len(np.unique(years)) < 2 or len(table) <= design.shape[1]:
            raise DataValidationError(
                f"history has {len(table)} area-year(s) over {len(np.unique(years))} year(s): too few to "
                f"estimate {design.shape[1]} rate parameters and a trend; give at least two full years"
            )
        y = table["calls"].to_numpy(dtype=float)
        result = fit_poisson(y, design, offset=np.log(exposure))
        self.coef_ = np.asarray(result.params)
        # Quasi-Poisson: years scatter more than Poisson (flu winters, policy changes); never less.
        self.dispersion_ = float(max(result.pearson_chi2 / result.df_resid, 1.0))
        self.cov_ = np.asarray(result.cov_params()) * self.dispersion_
        mu = np.asarray(result.mu)
        # Year-to-year spread beyond Poisson as a lognormal sd, for the simulation's annual shocks.
        self.year_sd_ = float(np.sqrt(max(np.sum((y - mu) ** 2 - mu) / np.sum(mu**2), 0.0)))
        last = table["year"] == self.last_year_
        recent = pd.Series(mu[last.to_numpy()], index=table.loc[last, "area"]).groupby(level=0).sum()
        self.area_weight_ = (recent / recent.sum()).reindex(self.areas_).fillna(0.0).to_numpy()
        self.fitted_ = table.assign(fitted=mu)
        return self

    @classmethod
    def from_config(
        cls,
        rate_ratio: Mapping[str, float],
        calls_per_1000: float,
        trend_per_year: float,
        population: pd.DataFrame,
        year: int,
    ) -> AgeRateModel:
        """Rates set in config: ``calls_per_1000`` a year at ``year`` in ``population``, no uncertainty."""
        model = cls(rate_ratio)
        rows = population[population["year"] == year]
        if rows.empty:
            raise DataValidationError(
                f"population has no rows for {year}, the year rates.calls_per_1000 refers to"
            )
        total = rows.groupby("age_band")["population"].sum()
        if set(rate_ratio) != set(total.index):
            raise ConfigError(f"rates.rate_ratio bands {sorted(rate_ratio)} differ from the population bands")
        ratio = pd.Series(rate_ratio, dtype=float)
        level = np.log(calls_per_1000 / 1000 * total.sum() / (total * ratio[total.index]).sum())
        model.bands_ = list(dict.fromkeys(population["age_band"]))
        model.areas_, model.by_band_ = [], False
        model.ref_year_ = float(year)
        model.first_year_ = model.last_year_ = int(year)
        model.names_ = ["level", "trend"]
        model.coef_ = np.array([level, np.log1p(trend_per_year)])
        model.cov_ = np.zeros((2, 2))
        model.dispersion_, model.year_sd_ = 1.0, 0.0
        model.area_weight_ = np.zeros(0)
        return model

    @property
    def trend_(self) -> float:
        """Fitted log change of per-capita rates per year."""
        return float(self.coef_[-1])

    def trend_interval(self, z: float = 1.96) -> tuple[float, float]:
        """Approximate interval of the yearly per-capita change, as fractions (0.005 = +0.5 % a year)."""
        half = z * float(np.sqrt(self.cov_[-1, -1]))
        return float(np.expm1(self.trend_ - half)), float(np.expm1(self.trend_ + half))

    def trend_factor(self, trend: np.ndarray, years: np.ndarray, scenario_trend: float | None) -> np.ndarray:
        """Rate multiplier against the reference year, shape (n_draws, n_years).

        The drawn ``trend`` applies up to the history's last year, which it describes; after that the
        scenario's yearly change applies (``None`` keeps the drawn trend).
        """
        years = np.asarray(years, dtype=float)
        onward = trend if scenario_trend is None else np.full_like(trend, np.log1p(scenario_trend))
        before = np.minimum(years, self.last_year_) - self.ref_year_
        after = np.maximum(years - self.last_year_, 0.0)
        return np.exp(trend[:, None] * before[None, :] + onward[:, None] * after[None, :])

    def draw(self, area: str, n: int, rng: np.random.Generator | None = None) -> RateDraws:
        """``n`` parameter draws for ``area`` from the estimate's normal approximation (``rng=None``: the
        estimate itself, repeated)."""
        offset, level = self._level_design(area)
        if rng is None or not np.any(self.cov_):
            theta = np.repeat(self.coef_[None, :], n, axis=0)
        else:
            theta = rng.multivariate_normal(self.coef_, self.cov_, size=n, method="cholesky")
        return RateDraws(log_rate=offset[None, :] + theta @ level.T, trend=theta[:, -1])

    def _design(self, table: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        columns: dict[str, np.ndarray] = {}
        area = table["area"].to_numpy()
        if self.by_band_:
            for band in self.bands_:
                columns[f"band[{band}]"] = (table["age_band"].to_numpy() == band).astype(float)
            if self.area_effects:  # the first area is the reference level
                for name in self.areas_[1:]:
                    columns[f"area[{name}]"] = (area == name).astype(float)
        elif self.area_effects:
            for name in self.areas_:
                columns[f"area[{name}]"] = (area == name).astype(float)
        else:
            columns["level"] = np.ones(len(table))
        columns["trend"] = table["year"].to_numpy(dtype=float) - self.ref_year_
        return np.column_stack(list(columns.values())), list(columns)

    def _level_design(self, area: str) -> tuple[np.ndarray, np.ndarray]:
        """Offset (n_bands,) and loadings (n_bands, n_params): log rate by band = offset + loadings @ theta.

        An area without history under ``area_effects`` gets the recent-calls-weighted mean of the
        area levels, a linear combination, so its draws stay consistent with the covariance.
        """
        n_bands, n_params = len(self.bands_), len(self.names_)
        offset = np.zeros(n_bands)
        loadings = np.zeros((n_bands, n_params))
        index = {name: i for i, name in enumerate(self.names_)}
        if self.by_band_:
            for b, band in enumerate(self.bands_):
                loadings[b, index[f"band[{band}]"]] = 1.0
        else:
            offset = np.log(np.array([self.rate_ratio[band] for band in self.bands_], dtype=float))
        if "level" in index:
            loadings[:, index["level"]] = 1.0
        elif self.area_effects:
            if area in self.areas_:
                weights = {area: 1.0}
            else:
                weights = dict(zip(self.areas_, self.area_weight_, strict=True))
            for name, weight in weights.items():
                if f"area[{name}]" in index:
                    loadings[:, index[f"area[{name}]"]] += weight
        return offset, loadings
