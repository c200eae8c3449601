"""A synthetic ambulance world whose true expected demand is known, so models can meet the oracle.

Daily calls in an area are population by age band x age-specific call rate x per-capita trend x
calendar (weekday, season, bank holidays, the festive fortnight), split into ARP categories 1-4.
Noise is negative binomial, built as a gamma-Poisson mixture: one gamma shock per area and day
scales every category, so category counts and the area total are all negative binomial with the
same shape. The conditional mean before the shock is returned as ``y_expected``: no model can do
better on average than forecasting it (the oracle).

Optionally (``world.temperature.enabled``) the world has weather: one daily maximum temperature
for the trust, a seasonal curve plus autocorrelated noise, returned as the regressor column
``x_temperature``, with a multiplicative heat effect on expected calls above a threshold. It is off
by default, so the committed world and the benchmarks on it do not depend on it.

Every default is calibrated to a figure in DOMAIN.md (cited beside it in ``conf/generate.yaml``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from forecasting.calendar import FESTIVE_DAYS, is_bank_holiday
from mlops.errors import ConfigError

CATEGORIES = ("C1", "C2", "C3", "C4")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
OLD_AGE_FROM = 65  # bands starting at or above this age are tilted by an area's `older_tilt`


@dataclass(frozen=True)
class Area:
    """One area of the synthetic trust.

    Parameters
    ----------
    name : str
        Identifier used in ``unique_id``.
    population : float
        Residents in the first year of the world.
    older_tilt : float
        Multiplier on the national share of residents aged 65+ (coastal and rural areas are older).
    nation : str
        UK nation whose bank holidays apply.
    """

    name: str
    population: float
    older_tilt: float = 1.0
    nation: str = "england"


@dataclass(frozen=True)
class Temperature:
    """Daily maximum temperature and its effect on demand (see ``conf/generate.yaml``).

    Parameters
    ----------
    enabled : bool
        Give the world weather; when false nothing below is used and no column is added.
    mean_c, amplitude_c, warmest_day_of_year
        Seasonal curve of the daily maximum: ``mean_c + amplitude_c * cos(2 pi (doy - warmest) / 365.25)``.
    noise_sd_c, autocorrelation
        Day-to-day weather around the curve: an AR(1) process with this standard deviation and
        lag-1 correlation.
    heat_threshold_c, heat_effect_per_c
        Expected calls are multiplied by ``1 + heat_effect_per_c * max(0, t - heat_threshold_c)``.
    """

    enabled: bool = False
    mean_c: float = 14.5
    amplitude_c: float = 7.0
    warmest_day_of_year: float = 200.0
    noise_sd_c: float = 3.0
    autocorrelation: float = 0.7
    heat_threshold_c: float = 22.0
    heat_effect_per_c: float = 0.01

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first impossible value."""
        if self.noise_sd_c < 0 or self.amplitude_c < 0:
            raise ConfigError("world.temperature.noise_sd_c and amplitude_c must be >= 0")
        if not 0 <= self.autocorrelation < 1:
            raise ConfigError(
                f"world.temperature.autocorrelation must be in [0, 1), got {self.autocorrelation}"
            )
        if self.heat_effect_per_c < 0:
            raise ConfigError("world.temperature.heat_effect_per_c must be >= 0 (heat adds calls)")

    def daily_max(self, days: pd.DatetimeIndex, seed: int) -> np.ndarray:
        """Daily maximum temperature in degrees C, to 0.1 C as a weather record would give it."""
        angle = 2 * np.pi * (days.day_of_year.to_numpy() - self.warmest_day_of_year) / 365.25
        seasonal = self.mean_c + self.amplitude_c * np.cos(angle)
        # Its own random stream: the counts' noise stays the same whether weather is on or off.
        shocks = np.random.default_rng([seed, _TEMPERATURE_STREAM]).standard_normal(len(days))
        innovations = shocks * self.noise_sd_c * np.sqrt(1 - self.autocorrelation**2)
        innovations[:1] = shocks[:1] * self.noise_sd_c  # the first day starts in the stationary state
        noise = lfilter([1.0], [1.0, -self.autocorrelation], innovations)  # AR(1)
        return np.round(seasonal + noise, 1)

    def multiplier(self, temperature: np.ndarray) -> np.ndarray:
        """Factor on expected calls for each day's maximum temperature."""
        return 1 + self.heat_effect_per_c * np.maximum(temperature - self.heat_threshold_c, 0.0)


_TEMPERATURE_STREAM = 7  # any fixed number: it separates the weather's draws from the counts'


@dataclass(frozen=True)
class World:
    """Parameters of the synthetic world (see ``conf/generate.yaml`` for sources)."""

    start: str
    end: str
    areas: Sequence[Area]
    incidents_per_1000_per_year: float
    age_rate_ratio: Mapping[str, float]
    rate_trend_per_year: float
    weekday_factor: Mapping[str, float]
    month_factor: Mapping[str, float]
    bank_holiday_factor: float
    festive_factor: Mapping[str, float]
    category_mix: Mapping[str, float]
    dispersion_shape: float
    seed: int = 0
    temperature: Temperature = field(default_factory=Temperature)
    extra: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, spec: Mapping) -> World:
        """Build a world from a plain mapping (e.g. a resolved Hydra config), validating it."""
        spec = dict(spec)
        spec["areas"] = tuple(Area(**dict(area)) for area in spec["areas"])
        if "temperature" in spec:
            spec["temperature"] = Temperature(**dict(spec["temperature"]))
        world = cls(**spec)
        world.validate()
        return world

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first impossible value."""
        if pd.Timestamp(self.end) <= pd.Timestamp(self.start):
            raise ConfigError(f"world.end ({self.end}) must be after world.start ({self.start})")
        if not self.areas:
            raise ConfigError("world.areas is empty: the world needs at least one area")
        for area in self.areas:
            if area.population <= 0 or area.older_tilt <= 0:
                raise ConfigError(f"area {area.name!r}: population and older_tilt must be > 0")
        if set(self.weekday_factor) != set(WEEKDAYS):
            raise ConfigError(f"world.weekday_factor needs exactly the keys {', '.join(WEEKDAYS)}")
        if set(self.month_factor) != set(MONTHS):
            raise ConfigError(f"world.month_factor needs exactly the keys {', '.join(MONTHS)}")
        if unknown := set(self.festive_factor) - set(FESTIVE_DAYS):
            raise ConfigError(f"world.festive_factor has days outside 24 Dec-2 Jan: {unknown}")
        if set(self.category_mix) != set(CATEGORIES):
            raise ConfigError(f"world.category_mix needs exactly the keys {', '.join(CATEGORIES)}")
        if any(share < 0 for share in self.category_mix.values()) or not np.isclose(
            sum(self.category_mix.values()), 1.0, atol=1e-3
        ):
            raise ConfigError("world.category_mix shares must be >= 0 and sum to 1")
        positive = {
            "incidents_per_1000_per_year": self.incidents_per_1000_per_year,
            "bank_holiday_factor": self.bank_holiday_factor,
            "dispersion_shape": self.dispersion_shape,
        }
        for key, value in positive.items():
            if value <= 0:
                raise ConfigError(f"world.{key} must be > 0, got {value}")
        self.temperature.validate()


def band_lower_age(band: str) -> int:
    """Lower age of an ONS band label such as ``'85-89'`` or ``'90+'``."""
    return int(band.rstrip("+").split("-")[0])


def area_population(world: World, national: pd.DataFrame) -> pd.DataFrame:
    """Residents by area, year and age band: the national structure scaled to each area.

    Each area keeps the national projection's change by band (so it ages as England does) with
    its own tilt towards older residents, scaled to its stated population in the first year.

    Parameters
    ----------
    national : DataFrame
        Columns ``year, age_band, population`` (e.g. the ONS national projection).
    """
    missing_bands = set(world.age_rate_ratio) ^ set(national["age_band"])
    if missing_bands:
        raise ConfigError(f"world.age_rate_ratio bands and population bands differ: {sorted(missing_bands)}")
    first, last = pd.Timestamp(world.start).year, pd.Timestamp(world.end).year + 1
    years = national[(national["year"] >= first) & (national["year"] <= last)]
    if set(years["year"]) != set(range(first, last + 1)):
        raise ConfigError(f"population table must cover every year {first}..{last}")
    old = years["age_band"].map(band_lower_age) >= OLD_AGE_FROM
    frames = []
    for area in world.areas:
        weighted = years["population"] * np.where(old, area.older_tilt, 1.0)
        base_total = weighted[years["year"] == first].sum()
        frames.append(
            pd.DataFrame(
                {
                    "area": area.name,
                    "year": years["year"].to_numpy(),
                    "age_band": years["age_band"].to_numpy(),
                    "population": (weighted * area.population / base_total).to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def per_capita_rates(world: World, national: pd.DataFrame) -> pd.Series:
    """Annual calls per resident by age band in the first year of the world.

    The relative rates are scaled so that the national population in that year makes
    ``incidents_per_1000_per_year`` calls per 1,000 residents.
    """
    first = national[national["year"] == pd.Timestamp(world.start).year]
    ratio = first["age_band"].map(world.age_rate_ratio)
    scale = world.incidents_per_1000_per_year / 1000 * first["population"].sum()
    scale /= (first["population"] * ratio).sum()
    return pd.Series(world.age_rate_ratio, dtype=float) * scale


def _daily_population_demand(
    world: World, population: pd.DataFrame, rates: pd.Series, days: pd.DatetimeIndex
) -> pd.DataFrame:
    """Calls per day before calendar effects: population-weighted rates, interpolated daily.

    Annual populations are placed at mid-year and interpolated linearly between years.
    """
    annual = (
        population.assign(calls=population["population"] * population["age_band"].map(rates))
        .groupby(["area", "year"], as_index=False)["calls"]
        .sum()
    )
    mid_year = pd.to_datetime(annual["year"].astype(str) + "-07-02").values.astype(float)
    start = pd.Timestamp(world.start)
    years_elapsed = (days - start).days.to_numpy() / 365.25
    trend = (1 + world.rate_trend_per_year) ** years_elapsed
    out = {}
    for area, rows in annual.groupby("area"):
        calls = np.interp(days.values.astype(float), mid_year[rows.index], rows["calls"])
        out[area] = calls / 365.25 * trend
    return pd.DataFrame(out, index=days)


def calendar_multiplier(world: World, days: pd.DatetimeIndex, nation: str) -> np.ndarray:
    """Weekday x season x bank holiday x festive-day factor for each date.

    Weekday and month factors are normalised to average 1, so they shape demand without changing
    its level. Month factors are anchored mid-month and interpolated, giving a smooth year.
    Festive days take their own factor instead of the bank-holiday one.
    """
    weekday = np.array([world.weekday_factor[d] for d in WEEKDAYS], dtype=float)
    weekday /= weekday.mean()
    month = np.array([world.month_factor[m] for m in MONTHS], dtype=float)
    month /= month.mean()
    mid_month_doy = np.array([15.5 + 365.25 / 12 * k for k in range(12)])
    doy = days.day_of_year.to_numpy().astype(float)
    season = np.interp(doy, mid_month_doy, month, period=365.25)
    factor = weekday[days.day_of_week.to_numpy()] * season
    labels = days.strftime("%m-%d")
    festive = np.array([world.festive_factor.get(label, np.nan) for label in labels], dtype=float)
    holiday = np.where(is_bank_holiday(days, nation), world.bank_holiday_factor, 1.0)
    return factor * np.where(np.isnan(festive), holiday, festive)


def expected_daily_calls(world: World, national: pd.DataFrame) -> pd.DataFrame:
    """True expected calls per area, category and day: columns ``area, category, ds, y_expected``
    and, when the world has weather, ``x_temperature`` (its heat effect is in ``y_expected``)."""
    days = pd.date_range(world.start, world.end, freq="D")
    population = area_population(world, national)
    base = _daily_population_demand(world, population, per_capita_rates(world, national), days)
    weather = {}
    if world.temperature.enabled:
        weather["x_temperature"] = world.temperature.daily_max(days, world.seed)
    frames = []
    for area in world.areas:
        total = base[area.name].to_numpy() * calendar_multiplier(world, days, area.nation)
        if weather:
            total = total * world.temperature.multiplier(weather["x_temperature"])
        for category in CATEGORIES:
            frames.append(
                pd.DataFrame(
                    {
                        "area": area.name,
                        "category": category,
                        "ds": days,
                        "y_expected": total * world.category_mix[category],
                        **weather,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def simulate_daily_counts(world: World, national: pd.DataFrame) -> pd.DataFrame:
    """Simulated daily calls in long format, with the truth beside every count.

    Returns
    -------
    DataFrame
        ``unique_id`` (``area/category``), ``area``, ``category``, ``ds``, ``y`` (simulated count),
        ``y_expected`` (its true expected value) and, when the world has weather, the regressor
        ``x_temperature``; sorted by ``unique_id`` and ``ds``.
    """
    expected = expected_daily_calls(world, national)
    rng = np.random.default_rng(world.seed)
    n_days = expected["ds"].nunique()
    shape = world.dispersion_shape
    # One shock per area and day, shared by its categories (gamma-Poisson = negative binomial).
    shocks = rng.gamma(shape, 1 / shape, size=(len(world.areas), n_days))
    area_row = expected["area"].map({area.name: i for i, area in enumerate(world.areas)})
    day_index = (expected["ds"] - pd.Timestamp(world.start)).dt.days
    rate = expected["y_expected"].to_numpy() * shocks[area_row.to_numpy(), day_index.to_numpy()]
    counts = rng.poisson(rate)
    frame = expected.assign(
        unique_id=expected["area"] + "/" + expected["category"],
        y=counts.astype(np.int64),
    )
    columns = ["unique_id", "area", "category", "ds", "y", "y_expected"]
    columns += [name for name in expected.columns if name.startswith("x_")]
    return frame[columns].sort_values(["unique_id", "ds"], ignore_index=True)
