"""What makes the synthetic world hard: the departures from a calm log-linear calendar world.

Each is a switch under ``world.events`` (see ``conf/generate.yaml``), off by default so the
committed world stays as it is; the oracle benchmark turns them all on and then one at a time.

- ``ar_deviation``: day-to-day deviations of the log mean that persist (AR(1)), one per area;
- ``level_shift``: a new service model in one area changes its demand from a date on;
- ``pandemic``: a trust-wide drop and a slow rebound;
- ``outages``: days on which an area's recording fails and few calls are counted;
- ``heatwaves``: summer spells of a few days with extra demand;
- ``capacity``: areas whose counts are limited by capacity, so they vary less than Poisson.

All but ``capacity`` multiply the true expected value (``y_expected`` stays the exact mean of
each count given the world's state); ``capacity`` changes only how counts scatter around it.
Every switch draws from its own random stream, so turning one on leaves the others' draws and the
base counts' noise unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from mlops.errors import ConfigError

# Fixed numbers that separate each switch's random draws from the counts' (any distinct values).
_STREAMS = {"ar_deviation": 11, "outages": 13, "heatwaves": 17, "capacity": 19}


def _refuse_unknown(given: Mapping, key: str, cls: type) -> None:
    known = {f.name for f in fields(cls)}
    for name in given:
        if name not in known:
            raise ConfigError(f"{key}.{name} is not a setting of {key}; it has {', '.join(sorted(known))}")


def _check_range(key: str, value: float, low: float, high: float, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{key}={value}: must be {what}")


@dataclass(frozen=True)
class ArDeviation:
    """Persistent deviations: log mean + AR(1) with stationary ``sd`` and lag-1 ``autocorrelation``."""

    enabled: bool = False
    sd: float = 0.015
    autocorrelation: float = 0.7

    def validate(self, key: str) -> None:
        _check_range(f"{key}.sd", self.sd, 0, 0.5, "a standard deviation of the log mean from 0 to 0.5")
        _check_range(f"{key}.autocorrelation", self.autocorrelation, 0, 0.999, "in [0, 0.999]")

    def factor(self, n_areas: int, n_days: int, seed: int) -> np.ndarray:
        """Multiplier per area and day, shape (areas, days), mean 1 (lognormal correction)."""
        shocks = np.random.default_rng([seed, _STREAMS["ar_deviation"]]).standard_normal((n_areas, n_days))
        rho = self.autocorrelation
        innovations = shocks * self.sd * np.sqrt(1 - rho**2)
        innovations[:, 0] = shocks[:, 0] * self.sd  # each area starts in the stationary state
        log_deviation = lfilter([1.0], [1.0, -rho], innovations, axis=1)
        return np.exp(log_deviation - self.sd**2 / 2)


@dataclass(frozen=True)
class LevelShift:
    """From ``date`` on, demand in ``area`` is multiplied by ``factor`` (e.g. a new service model)."""

    enabled: bool = False
    area: str = "north"
    date: str = "2021-10-01"
    factor: float = 0.92

    def validate(self, key: str, areas: Sequence[str]) -> None:
        if self.area not in areas:
            raise ConfigError(
                f"{key}.area={self.area}: must be one of the world's areas ({', '.join(areas)})"
            )
        _check_range(f"{key}.factor", self.factor, 0.1, 10, "a multiplier from 0.1 to 10")
        try:
            pd.Timestamp(self.date)
        except (ValueError, TypeError):
            raise ConfigError(f"{key}.date={self.date}: must be an ISO date such as 2021-10-01") from None

    def factor_for(self, area: str, days: pd.DatetimeIndex) -> np.ndarray:
        if area != self.area:
            return np.ones(len(days))
        return np.where(days >= pd.Timestamp(self.date), self.factor, 1.0)


@dataclass(frozen=True)
class Pandemic:
    """Trust-wide drop to ``trough_factor`` over ``drop_days`` from ``start``, then a linear
    rebound to normal over ``rebound_days``."""

    enabled: bool = False
    start: str = "2020-03-16"
    trough_factor: float = 0.8
    drop_days: int = 14
    rebound_days: int = 180

    def validate(self, key: str) -> None:
        _check_range(f"{key}.trough_factor", self.trough_factor, 0.05, 1, "a multiplier from 0.05 to 1")
        _check_range(f"{key}.drop_days", self.drop_days, 1, 3660, "a whole number of days >= 1")
        _check_range(f"{key}.rebound_days", self.rebound_days, 1, 3660, "a whole number of days >= 1")
        try:
            pd.Timestamp(self.start)
        except (ValueError, TypeError):
            raise ConfigError(f"{key}.start={self.start}: must be an ISO date such as 2020-03-16") from None

    def factor(self, days: pd.DatetimeIndex) -> np.ndarray:
        since = (days - pd.Timestamp(self.start)).days.to_numpy().astype(float)
        depth = 1 - self.trough_factor
        falling = np.clip(since / self.drop_days, 0, 1)
        rising = np.clip((since - self.drop_days) / self.rebound_days, 0, 1)
        return np.where(since < 0, 1.0, 1 - depth * falling * (1 - rising))


@dataclass(frozen=True)
class Outages:
    """Recording failures: on ``per_year`` random days a year per area, only ``factor`` of calls count."""

    enabled: bool = False
    per_year: float = 1.0
    factor: float = 0.05

    def validate(self, key: str) -> None:
        _check_range(f"{key}.per_year", self.per_year, 0, 50, "a number of days a year from 0 to 50")
        _check_range(f"{key}.factor", self.factor, 0, 1, "the share of calls still counted, 0 to 1")

    def factor_for(self, n_areas: int, n_days: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng([seed, _STREAMS["outages"]])
        down = rng.random((n_areas, n_days)) < self.per_year / 365.25
        return np.where(down, self.factor, 1.0)


@dataclass(frozen=True)
class Heatwaves:
    """``per_year`` spells of ``length_days`` starting on random days in June-August, each adding
    ``effect`` to every area's demand (no temperature column announces them)."""

    enabled: bool = False
    per_year: int = 1
    length_days: int = 4
    effect: float = 0.08

    def validate(self, key: str) -> None:
        _check_range(f"{key}.per_year", self.per_year, 0, 10, "a whole number of spells from 0 to 10")
        _check_range(f"{key}.length_days", self.length_days, 1, 30, "a whole number of days from 1 to 30")
        _check_range(f"{key}.effect", self.effect, 0, 1, "extra demand as a fraction, 0 to 1")

    def factor(self, days: pd.DatetimeIndex, seed: int) -> np.ndarray:
        rng = np.random.default_rng([seed, _STREAMS["heatwaves"]])
        out = np.ones(len(days))
        for year in sorted(set(days.year)):
            summer = pd.date_range(f"{year}-06-01", f"{year}-08-31", freq="D")
            for start in rng.choice(summer, size=int(self.per_year), replace=False):
                spell = (days >= start) & (days < pd.Timestamp(start) + pd.Timedelta(days=self.length_days))
                out[spell] = 1 + self.effect
        return out


@dataclass(frozen=True)
class Capacity:
    """Areas whose counts are capacity-limited: binomial with ``n = ceil(headroom x mean)`` trials,
    so the mean is exact and the variance ``mean x (1 - 1 / headroom)`` is below Poisson."""

    enabled: bool = False
    areas: Sequence[str] = ("moor",)
    headroom: float = 1.25

    def validate(self, key: str, areas: Sequence[str]) -> None:
        unknown = [a for a in self.areas if a not in areas]
        if unknown or not self.areas:
            raise ConfigError(
                f"{key}.areas={list(self.areas)}: must be a non-empty list of the world's areas"
            )
        _check_range(
            f"{key}.headroom", self.headroom, 1.01, 100, "a ratio of capacity to mean from 1.01 to 100"
        )

    def counts(self, expected: np.ndarray, seed: int) -> np.ndarray:
        trials = np.ceil(self.headroom * expected).astype(np.int64)
        probability = np.divide(expected, trials, out=np.zeros_like(expected), where=trials > 0)
        return np.random.default_rng([seed, _STREAMS["capacity"]]).binomial(trials, probability)


SWITCHES = {
    "ar_deviation": ArDeviation,
    "level_shift": LevelShift,
    "pandemic": Pandemic,
    "outages": Outages,
    "heatwaves": Heatwaves,
    "capacity": Capacity,
}


@dataclass(frozen=True)
class Events:
    """The world's departures from calm, each with its own switch (all off by default)."""

    ar_deviation: ArDeviation = field(default_factory=ArDeviation)
    level_shift: LevelShift = field(default_factory=LevelShift)
    pandemic: Pandemic = field(default_factory=Pandemic)
    outages: Outages = field(default_factory=Outages)
    heatwaves: Heatwaves = field(default_factory=Heatwaves)
    capacity: Capacity = field(default_factory=Capacity)

    @classmethod
    def from_dict(cls, spec: Mapping | None, key: str = "world.events") -> Events:
        spec = dict(spec or {})
        _refuse_unknown(spec, key, cls)
        parts = {}
        for name, part in spec.items():
            part = dict(part or {})
            _refuse_unknown(part, f"{key}.{name}", SWITCHES[name])
            if "enabled" in part and not isinstance(part["enabled"], bool):
                raise ConfigError(f"{key}.{name}.enabled={part['enabled']}: must be true or false")
            if "areas" in part:
                part["areas"] = tuple(part["areas"] or ())
            parts[name] = SWITCHES[name](**part)
        return cls(**parts)

    def enabled(self) -> list[str]:
        return [name for name in SWITCHES if getattr(self, name).enabled]

    def validate(self, areas: Sequence[str], key: str = "world.events") -> None:
        for name in self.enabled():
            part = getattr(self, name)
            if name in ("level_shift", "capacity"):
                part.validate(f"{key}.{name}", areas)
            else:
                part.validate(f"{key}.{name}")

    def demand_factor(self, areas: Sequence[str], days: pd.DatetimeIndex, seed: int) -> np.ndarray:
        """Multiplier on each area's expected calls per day, shape (areas, days)."""
        out = np.ones((len(areas), len(days)))
        if self.ar_deviation.enabled:
            out *= self.ar_deviation.factor(len(areas), len(days), seed)
        if self.level_shift.enabled:
            out *= np.vstack([self.level_shift.factor_for(area, days) for area in areas])
        if self.pandemic.enabled:
            out *= self.pandemic.factor(days)
        if self.heatwaves.enabled:
            out *= self.heatwaves.factor(days, seed)
        if self.outages.enabled:
            out *= self.outages.factor_for(len(areas), len(days), seed)
        return out
