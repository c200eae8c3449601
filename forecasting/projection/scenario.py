"""Scenarios: the assumptions a planner varies, checked when they are loaded.

A scenario says how the population ages (a scale on the projected growth of age ranges), whether
per-capita use keeps its fitted trend, how calls split into ARP categories, and what share is
closed remotely ("hear and treat") along a path to a target year.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from forecasting.projection.bands import bands_in_range, parse_band
from forecasting.synthetic import CATEGORIES
from mlops.errors import ConfigError, DataValidationError

ATTENDED = ("see_and_treat", "conveyed")
# A per-capita trend is a yearly fraction; anything beyond +-10 % a year is almost surely a typo
# (0.5 meant as 0.5 %), and even Melbourne's exceptional growth was 4.8 % a year (DOMAIN.md).
MAX_ABS_TREND = 0.10
MAX_TARGET_YEARS = 50  # a remote-closure target further out than this is a typo, not a plan


@dataclass(frozen=True)
class RemoteClosure:
    """Share of calls closed by telephone, held at ``start_share`` up to the base year and then moving
    in equal yearly steps to ``end_share`` in ``end_year`` (held after)."""

    start_share: float
    end_share: float
    end_year: int

    def share(self, years: np.ndarray, base_year: int) -> np.ndarray:
        """The share in each of ``years`` (annual values, so a table for 2035 shows the 2035 target)."""
        years = np.asarray(years, dtype=float)
        if self.end_year <= base_year:
            return np.where(years <= base_year, self.start_share, self.end_share)
        progress = np.clip((years - base_year) / (self.end_year - base_year), 0.0, 1.0)
        return self.start_share + (self.end_share - self.start_share) * progress


@dataclass(frozen=True)
class Scenario:
    """One set of planning assumptions.

    Parameters
    ----------
    name, description : str
        Short identifier and one plain sentence for the report.
    ageing : mapping of str to float
        Scale on the projected population growth of age ranges (``{'85+': 1.46}``); 1 keeps it.
    rate_trend_per_year : float or None
        Per-capita change a year after the history ends; None keeps the trend fitted on history.
    category_mix : mapping of str to float
        Shares of calls in categories C1-C4, summing to 1.
    remote_closure : RemoteClosure
        Path of the share closed remotely.
    attended_split : mapping of str to float
        Of incidents that need an ambulance, shares treated on scene and conveyed, summing to 1.
    """

    name: str
    description: str
    ageing: Mapping[str, float]
    rate_trend_per_year: float | None
    category_mix: Mapping[str, float]
    remote_closure: RemoteClosure
    attended_split: Mapping[str, float] = field(
        default_factory=lambda: {"see_and_treat": 0.32, "conveyed": 0.68}
    )

    @classmethod
    def from_dict(cls, spec: Mapping) -> Scenario:
        """Build from a plain mapping (a resolved Hydra config), failing on the first impossible value."""
        spec = dict(spec)
        name = str(spec.get("name") or "")
        if not name:
            raise ConfigError("a scenario needs a `name`")
        where = f"scenario {name!r}"
        closure = dict(spec.get("remote_closure") or {})
        missing = {"start_share", "end_share", "end_year"} - set(closure)
        if missing:
            raise ConfigError(f"{where}: remote_closure needs {sorted(missing)}")
        for key in ("start_share", "end_share"):
            _check_share(closure[key], f"{where}: remote_closure.{key}")
        trend = spec.get("rate_trend_per_year")
        if trend is not None and not abs(float(trend)) <= MAX_ABS_TREND:
            raise ConfigError(
                f"{where}: rate_trend_per_year is a yearly fraction (0.005 = +0.5 % a year) within "
                f"+-{MAX_ABS_TREND}, got {trend}"
            )
        ageing = {str(k): float(v) for k, v in dict(spec.get("ageing") or {}).items()}
        for age_range, value in ageing.items():
            try:
                parse_band(age_range)
            except DataValidationError as error:
                raise ConfigError(f"{where}: ageing: {error}") from error
            if not value >= 0:
                raise ConfigError(f"{where}: ageing[{age_range!r}] must be a growth scale >= 0, got {value}")
        return cls(
            name=name,
            description=str(spec.get("description") or ""),
            ageing=ageing,
            rate_trend_per_year=None if trend is None else float(trend),
            category_mix=_shares(spec.get("category_mix"), CATEGORIES, f"{where}: category_mix"),
            remote_closure=RemoteClosure(
                float(closure["start_share"]), float(closure["end_share"]), _whole(closure["end_year"], where)
            ),
            attended_split=_shares(spec.get("attended_split"), ATTENDED, f"{where}: attended_split"),
        )

    def check_against(self, bands: list[str], base_year: int, final_year: int) -> None:
        """Cross-checks that need the population and the projection years."""
        where = f"scenario {self.name!r}"
        for age_range in self.ageing:
            try:
                bands_in_range(bands, age_range, source=f"{where}: ageing")
            except DataValidationError as error:
                raise ConfigError(str(error)) from error
        end = self.remote_closure.end_year
        # A target year after the final year is allowed: the path is then only partly travelled.
        if not base_year <= end <= base_year + MAX_TARGET_YEARS:
            raise ConfigError(
                f"{where}: remote_closure.end_year {end} is out of range; use a year from the base year "
                f"{base_year} to {base_year + MAX_TARGET_YEARS} (the projection runs to {final_year})"
            )


def _check_share(value, where: str) -> float:
    try:
        share = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a share between 0 and 1, got {value!r}") from None
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"{where} must be a share between 0 and 1 (e.g. 0.2 for 20 %), got {value}")
    return share


def _shares(spec, keys: tuple[str, ...], where: str) -> dict[str, float]:
    spec = dict(spec or {})
    if set(spec) != set(keys):
        raise ConfigError(
            f"{where} needs exactly the keys {', '.join(keys)}, got {', '.join(map(str, spec))}"
        )
    shares = {key: _check_share(spec[key], f"{where}.{key}") for key in keys}
    if not np.isclose(sum(shares.values()), 1.0, atol=1e-3):
        raise ConfigError(f"{where} shares must sum to 1, they sum to {sum(shares.values()):.4f}")
    return shares


def _whole(value, where: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: remote_closure.end_year must be a year, got {value!r}") from None
    if number != round(number):
        raise ConfigError(f"{where}: remote_closure.end_year must be a whole year, got {value}")
    return int(number)
