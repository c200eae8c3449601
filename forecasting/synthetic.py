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

The calendar is the world's own, not the models': bank holidays come straight from the
``holidays`` package (each by name, so Easter Monday and Christmas Day can differ through
``holiday_factors``), festive days and other special days from the config, and a day after a bank
holiday can carry its own factor. Switches under ``world.events`` (:mod:`forecasting.synthetic_events`)
make the world harder: persistent deviations, a level shift, a pandemic, outages, heatwaves and
capacity-limited counts.

Every default is calibrated to a figure in DOMAIN.md (cited beside it in ``conf/generate.yaml``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import holidays
import numpy as np
import pandas as pd
from scipy.signal import lfilter

from forecasting.synthetic_events import Events
from mlops.errors import ConfigError

CATEGORIES = ("C1", "C2", "C3", "C4")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
OLD_AGE_FROM = 65  # bands starting at or above this age are tilted by an area's `older_tilt`
# The world's own names for the UK's bank-holiday calendars (``holidays`` subdivisions of GB).
NATIONS = {"england": "ENG", "wales": "WLS", "scotland": "SCT", "northern_ireland": "NIR"}


@lru_cache(maxsize=16)
def _bank_holiday_names(nation: str, first_year: int, last_year: int) -> dict[str, str]:
    calendar = holidays.country_holidays("GB", subdiv=NATIONS[nation], years=range(first_year, last_year + 1))
    return {day.strftime("%Y-%m-%d"): name for day, name in calendar.items()}


def bank_holiday_names(days: pd.DatetimeIndex, nation: str) -> np.ndarray:
    """Each date's bank-holiday name in ``nation`` ('' on other days), from ``holidays`` directly."""
    if nation not in NATIONS:
        raise ConfigError(f"unknown nation {nation!r}: use one of {', '.join(NATIONS)}")
    names = _bank_holiday_names(nation, int(days.year.min()), int(days.year.max()))
    return np.array([names.get(day, "") for day in days.strftime("%Y-%m-%d")], dtype=object)


def _is_month_day(label: str) -> bool:
    try:
        pd.Timestamp(f"2020-{label}")  # a leap year, so 02-29 is a day
    except (ValueError, TypeError):
        return False
    return len(str(label)) == 5


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
    # The world's own calendar beyond one factor for every bank holiday (empty / 1: none).
    holiday_factors: Mapping[str, float] = field(default_factory=dict)
    day_after_holiday_factor: float = 1.0
    other_days: Mapping[str, float] = field(default_factory=dict)
    events: Events = field(default_factory=Events)

    @classmethod
    def from_dict(cls, spec: Mapping) -> World:
        """Build a world from a plain mapping (e.g. a resolved Hydra config), validating it."""
        spec = dict(spec)
        spec["areas"] = tuple(Area(**dict(area)) for area in spec["areas"])
        if "temperature" in spec:
            spec["temperature"] = Temperature(**dict(spec["temperature"]))
        spec["events"] = Events.from_dict(spec.get("events"))
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
        for key in ("festive_factor", "other_days"):
            if bad := sorted(str(day) for day in getattr(self, key) if not _is_month_day(day)):
                raise ConfigError(f"world.{key} has keys that are not days of the year (MM-DD): {bad}")
        for area in self.areas:
            if area.nation not in NATIONS:
                raise ConfigError(f"area {area.name!r}: nation must be one of {', '.join(NATIONS)}")
        factors = {**self.holiday_factors, **self.other_days, "": self.day_after_holiday_factor}
        if any(value <= 0 for value in factors.values()):
            raise ConfigError("world.holiday_factors, other_days and day_after_holiday_factor must be > 0")
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
        self.events.validate([area.name for area in self.areas])


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
    Festive days take their own factor instead of the bank-holiday one; a bank holiday named in
    ``holiday_factors`` takes its own instead of ``bank_holiday_factor``; ``other_days`` (e.g.
    Bonfire Night) and the day after a bank holiday multiply on top.
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
    names = bank_holiday_names(days, nation)
    holiday = np.array(
        [world.holiday_factors.get(name, world.bank_holiday_factor) if name else 1.0 for name in names]
    )
    factor = factor * np.where(np.isnan(festive), holiday, festive)
    if world.other_days:
        factor = factor * np.array([world.other_days.get(label, 1.0) for label in labels])
    if world.day_after_holiday_factor != 1.0:
        after = np.roll(names != "", 1)
        after[0] = False
        factor = factor * np.where(after & (names == ""), world.day_after_holiday_factor, 1.0)
    return factor


def expected_daily_calls(world: World, national: pd.DataFrame) -> pd.DataFrame:
    """True expected calls per area, category and day: columns ``area, category, ds, y_expected``
    and, when the world has weather, ``x_temperature`` (its heat effect is in ``y_expected``)."""
    days = pd.date_range(world.start, world.end, freq="D")
    population = area_population(world, national)
    base = _daily_population_demand(world, population, per_capita_rates(world, national), days)
    weather = {}
    if world.temperature.enabled:
        weather["x_temperature"] = world.temperature.daily_max(days, world.seed)
    events = world.events.demand_factor([area.name for area in world.areas], days, world.seed)
    frames = []
    for i, area in enumerate(world.areas):
        total = base[area.name].to_numpy() * calendar_multiplier(world, days, area.nation) * events[i]
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
    if world.events.capacity.enabled:
        # Capacity-limited areas: binomial around the same mean, without the gamma shock.
        capped = expected["area"].isin(world.events.capacity.areas).to_numpy()
        counts[capped] = world.events.capacity.counts(expected["y_expected"].to_numpy()[capped], world.seed)
    frame = expected.assign(
        unique_id=expected["area"] + "/" + expected["category"],
        y=counts.astype(np.int64),
    )
    columns = ["unique_id", "area", "category", "ds", "y", "y_expected"]
    columns += [name for name in expected.columns if name.startswith("x_")]
    return frame[columns].sort_values(["unique_id", "ds"], ignore_index=True)
