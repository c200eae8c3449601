"""From projected calls to the people and vehicles a trust needs (library layer).

For each area, scenario and year of a projection, and a typical winter week:

1. **Incidents needing a face-to-face response** by ARP category: the calls not closed by
   telephone, split by the scenario's category mix (AmbSYS's mix of responded incidents).
2. **Ambulance hours**: each incident keeps a vehicle busy for its job cycle: travel to the scene
   (by category), time on scene and, for the share conveyed, the journey to hospital, handover and
   clearing up.
3. **Vehicles and crews by hour of day**: the calls of each weekday of the winter week (Dec-Feb
   days outside the Christmas-New Year fortnight, averaged by weekday) spread over the hours with
   an hour-by-weekday profile; busy vehicles in an hour = incidents arriving per hour x job cycle
   in hours (Little's law, the load a fleet must carry on average); vehicles on shift = busy
   vehicles / target utilisation, rounded up; crew members = vehicles x crew size.
4. **Clinical hub clinicians by hour**: calls assessed by a clinician = calls closed remotely /
   the share of assessed calls closed; clinicians = the fewest that answer ``target`` of them within
   ``answer_within_min`` (:mod:`forecasting.projection.erlang`: Erlang C, or Erlang A when
   ``patience_min`` says how long callers wait before hanging up).

Every figure is computed for the expected calls (``mean``) and for each projected quantile
(``p10``, ``p50``, ``p90``), so each has the projection's range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecasting.projection.erlang import agents_needed
from forecasting.projection.splits import shares_by_year
from forecasting.synthetic import CATEGORIES
from mlops.errors import ConfigError, DataValidationError

if TYPE_CHECKING:
    from forecasting.projection.projector import Projection

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WINTER_MONTHS = (12, 1, 2)


@dataclass(frozen=True)
class JobCycle:
    """Minutes a vehicle is busy per incident, by part (see ``conf/workforce/default.yaml``)."""

    travel: Mapping[str, float] = field(
        default_factory=lambda: {"C1": 5.5, "C2": 9.0, "C3": 12.0, "C4": 12.0}
    )
    on_scene: float = 35.0
    to_hospital: float = 25.0
    handover: float = 30.0
    clear: float = 5.0

    def minutes(self, category: str, conveyed_share: float) -> float:
        """Mean busy minutes of an incident of ``category`` when ``conveyed_share`` are conveyed."""
        return (
            self.travel[category]
            + self.on_scene
            + conveyed_share * (self.to_hospital + self.handover + self.clear)
        )


@dataclass(frozen=True)
class HubSettings:
    """The clinical hub: who is assessed, how long it takes, how fast calls must be answered."""

    closure_rate: float = 0.24
    assessment_min: float = 20.0
    answer_within_min: float = 10.0
    target: float = 0.8
    patience_min: float | None = None  # mean wait before a caller hangs up: Erlang A; None: Erlang C


@dataclass(frozen=True)
class WorkforceSettings:
    """Everything the workforce figures depend on besides the projection."""

    job_cycle: JobCycle = JobCycle()
    utilisation: float = 0.75
    crew_size: int = 2
    hub: HubSettings = HubSettings()
    hour_profile: np.ndarray | None = None  # (7, 24) shares by weekday and hour; None: flat

    def __post_init__(self) -> None:
        checks = {
            "workforce.utilisation": (self.utilisation, 0.05, 1.0),
            "workforce.hub.closure_rate": (self.hub.closure_rate, 1e-3, 1.0),
            "workforce.hub.target": (self.hub.target, 1e-3, 0.999),
            "workforce.hub.assessment_min": (self.hub.assessment_min, 0.1, 600.0),
            "workforce.hub.answer_within_min": (self.hub.answer_within_min, 0.0, 600.0),
            "workforce.crew_size": (self.crew_size, 1, 10),
        }
        if self.hub.patience_min is not None:
            checks["workforce.hub.patience_min"] = (self.hub.patience_min, 0.1, 600.0)
        for key, (value, low, high) in checks.items():
            if not low <= value <= high:
                raise ConfigError(f"{key}={value}: must be from {low:g} to {high:g}")
        minutes = [*self.job_cycle.travel.values(), self.job_cycle.on_scene, self.job_cycle.to_hospital]
        minutes += [self.job_cycle.handover, self.job_cycle.clear]
        if any(not 0 <= m <= 1440 for m in minutes):
            raise ConfigError(f"workforce.job_cycle_min: every part must be 0-1440 minutes, got {minutes}")
        if set(self.job_cycle.travel) != set(CATEGORIES):
            raise ConfigError(
                f"workforce.job_cycle_min.travel needs {list(CATEGORIES)}, "
                f"got {sorted(self.job_cycle.travel)}"
            )
        if self.hour_profile is not None:
            profile = np.asarray(self.hour_profile, dtype=float)
            if profile.shape != (7, 24) or not np.allclose(profile.sum(axis=1), 1.0) or (profile < 0).any():
                raise ConfigError(
                    "the hour profile must give 24 non-negative shares summing to 1 for each weekday"
                )

    @classmethod
    def from_dict(cls, values: Mapping, hour_profile: np.ndarray | None = None) -> WorkforceSettings:
        """From the config group ``workforce`` (see ``conf/workforce/default.yaml``)."""
        cycle = dict(values["job_cycle_min"])
        hub = dict(values["hub"])
        return cls(
            job_cycle=JobCycle(
                travel={str(k): float(v) for k, v in dict(cycle["travel"]).items()},
                on_scene=float(cycle["on_scene"]),
                to_hospital=float(cycle["to_hospital"]),
                handover=float(cycle["handover"]),
                clear=float(cycle["clear"]),
            ),
            utilisation=float(values["utilisation"]),
            crew_size=int(values["crew_size"]),
            hub=HubSettings(
                closure_rate=float(hub["closure_rate"]),
                assessment_min=float(hub["assessment_min"]),
                answer_within_min=float(hub["answer_within_min"]),
                target=float(hub["target"]),
                patience_min=None if hub.get("patience_min") is None else float(hub["patience_min"]),
            ),
            hour_profile=hour_profile,
        )


def hour_profile_from_shares(shares: Sequence[float]) -> np.ndarray:
    """The same 24 hourly shares for every weekday, normalised to sum to 1."""
    values = np.asarray(list(shares), dtype=float)
    if values.shape != (24,) or (values < 0).any() or values.sum() <= 0:
        raise ConfigError(f"workforce.profile.hour_shares must be 24 non-negative numbers, got {len(values)}")
    return np.tile(values / values.sum(), (7, 1))


def hour_profile_from_calls(call_times: pd.Series, source: str = "calls") -> np.ndarray:
    """Shares of each weekday's calls by hour, learnt from call-level timestamps (e.g. a CAD extract).

    Raises
    ------
    DataValidationError
        When timestamps do not parse, or a weekday has too few calls (fewer than 24 x 20) to learn from.
    """
    times = pd.to_datetime(call_times, errors="coerce")
    if times.isna().any():
        bad = int(times.isna().sum())
        raise DataValidationError(f"{source}: {bad} call time(s) are not date-times; fix or drop them")
    counts = pd.crosstab(times.dt.weekday, times.dt.hour).reindex(
        index=range(7), columns=range(24), fill_value=0
    )
    per_day = counts.sum(axis=1)
    if (per_day < 24 * 20).any():
        raise DataValidationError(
            f"{source}: {int(per_day.min())} calls on the quietest weekday: too few to learn an hour-of-day "
            "profile (need 480 a weekday); give more calls or set workforce.profile.calls_path=null"
        )
    return (counts.to_numpy(dtype=float) / per_day.to_numpy(dtype=float)[:, None]).astype(float)


def winter_week(daily: pd.DataFrame, statistics: Sequence[str]) -> pd.DataFrame:
    """Calls on a typical winter day of each weekday: ``area, scenario, year, weekday, <statistics>``.

    Winter days are those of December, January and February of each calendar year, outside 20
    December - 3 January (Christmas and New Year are exceptional, planned separately).
    """
    days = daily["ds"]
    month, day = days.dt.month, days.dt.day
    festive = ((month == 12) & (day >= 20)) | ((month == 1) & (day <= 3))
    winter = daily[days.dt.month.isin(WINTER_MONTHS) & ~festive]
    grouped = winter.assign(weekday=winter["ds"].dt.weekday).groupby(["area", "scenario", "year", "weekday"])
    return grouped[list(statistics)].mean().reset_index()


@dataclass(frozen=True)
class Workforce:
    """Workforce tables.

    Attributes
    ----------
    by_hour : DataFrame
        ``area, scenario, year, weekday, hour, statistic, calls, incidents, vehicles_busy, vehicles,
        crew, hub_calls, clinicians`` for a typical winter week (per hour of that weekday).
    by_year : DataFrame
        ``area, scenario, year, measure, mean, p..``: incidents needing a face-to-face response
        (all and C1-C4) and ambulance hours in the year; vehicles, crew and clinicians on shift
        at the winter week's busiest hour and on average over its hours.
    settings : WorkforceSettings
    """

    by_hour: pd.DataFrame
    by_year: pd.DataFrame
    settings: WorkforceSettings


def workforce(
    annual: pd.DataFrame,
    daily: pd.DataFrame,
    scenarios: Sequence,
    base_year: int,
    labels: Sequence[str],
    settings: WorkforceSettings,
) -> Workforce:
    """Workforce figures for every area, scenario and year of a projection's ``annual`` and ``daily``."""
    statistics = ["mean", *labels]
    profile = settings.hour_profile if settings.hour_profile is not None else np.full((7, 24), 1 / 24)
    week = winter_week(daily, statistics)
    years = sorted(week["year"].unique())
    by_scenario = {sc.name: sc for sc in scenarios}
    frames, yearly = [], []
    for name, part in week.groupby("scenario", sort=False):
        scenario = by_scenario[name]
        shares = shares_by_year(scenario, years, base_year)
        conveyed = scenario.attended_split["conveyed"]
        cycle_hours = {c: settings.job_cycle.minutes(c, conveyed) / 60 for c in CATEGORIES}
        per_incident = sum(scenario.category_mix[c] * cycle_hours[c] for c in CATEGORIES)
        for stat in statistics:
            # rows: (area, year, weekday) of this scenario; columns: hours
            calls = part[stat].to_numpy()[:, None] * profile[part["weekday"].to_numpy()]
            attended = shares.loc[part["year"], "needs_ambulance"].to_numpy()[:, None]
            remote = shares.loc[part["year"], "hear_and_treat"].to_numpy()[:, None]
            incidents = calls * attended
            busy = incidents * per_incident
            vehicles = np.ceil(busy / settings.utilisation - 1e-9)
            hub_calls = np.minimum(calls * remote / settings.hub.closure_rate, calls)
            hub = settings.hub
            clinicians = agents_needed(
                hub_calls / 60, hub.assessment_min, hub.answer_within_min, hub.target, hub.patience_min
            )
            n = len(part)
            frames.append(
                pd.DataFrame(
                    {
                        "area": np.repeat(part["area"].to_numpy(), 24),
                        "scenario": name,
                        "year": np.repeat(part["year"].to_numpy(), 24),
                        "weekday": np.repeat(part["weekday"].to_numpy(), 24),
                        "hour": np.tile(np.arange(24), n),
                        "statistic": stat,
                        "calls": calls.ravel(),
                        "incidents": incidents.ravel(),
                        "vehicles_busy": busy.ravel(),
                        "vehicles": vehicles.ravel(),
                        "crew": (vehicles * settings.crew_size).ravel(),
                        "hub_calls": hub_calls.ravel(),
                        "clinicians": clinicians.ravel(),
                    }
                )
            )
        # Annual incidents and ambulance hours, from the projected annual incidents needing an ambulance.
        needs = annual[(annual["scenario"] == name) & (annual["measure"] == "needs_ambulance")]
        for row in needs.itertuples(index=False):
            values = {stat: float(getattr(row, stat)) for stat in statistics}
            keys = {"area": row.area, "scenario": name, "year": int(row.year)}
            yearly.append({**keys, "measure": "incidents_face_to_face", **values})
            for c in CATEGORIES:
                share = scenario.category_mix[c]
                yearly.append(
                    {**keys, "measure": f"incidents_{c}", **{k: v * share for k, v in values.items()}}
                )
            yearly.append(
                {**keys, "measure": "ambulance_hours", **{k: v * per_incident for k, v in values.items()}}
            )
    by_hour = pd.concat(frames, ignore_index=True)
    summary = _week_summary(by_hour)
    by_year = pd.concat([pd.DataFrame(yearly), summary], ignore_index=True)
    order = {sc.name: i for i, sc in enumerate(scenarios)}  # the leading scenario first, as projected
    by_year = by_year.sort_values(
        ["area", "scenario", "year", "measure"], key=lambda c: c.map(order) if c.name == "scenario" else c
    ).reset_index(drop=True)
    return Workforce(by_hour=by_hour, by_year=by_year, settings=settings)


def projection_workforce(projection: Projection, settings: WorkforceSettings) -> Workforce:
    """:func:`workforce` for a whole projection: its tables and scenarios, growth from its base year,
    its fan's quantile labels (what the pipeline and the speed benchmark both staff)."""
    return workforce(
        projection.annual,
        projection.daily,
        projection.scenarios,
        projection.settings.base_year,
        projection.settings.labels,
        settings,
    )


def _week_summary(by_hour: pd.DataFrame) -> pd.DataFrame:
    """Busiest hour and the average over the winter week's 168 hours, per area, scenario and year."""
    keys = ["area", "scenario", "year", "statistic"]
    grouped = by_hour.groupby(keys)
    parts = []
    for column in ("vehicles", "crew", "clinicians"):
        parts.append(grouped[column].max().rename(f"{column}_peak_hour"))
        parts.append(grouped[column].mean().rename(f"{column}_average_hour"))
    wide = pd.concat(parts, axis=1).reset_index()
    long = wide.melt(id_vars=keys, var_name="measure", value_name="value")
    return long.pivot_table(
        index=["area", "scenario", "year", "measure"], columns="statistic", values="value"
    ).reset_index()


def heatmap_table(
    by_hour: pd.DataFrame, area: str, scenario: str, year: int, column: str, statistic: str = "mean"
) -> pd.DataFrame:
    """``column`` by weekday (rows, Mon-Sun) and hour (columns 0-23) for one area, scenario and year."""
    rows = by_hour[
        (by_hour["area"] == area)
        & (by_hour["scenario"] == scenario)
        & (by_hour["year"] == year)
        & (by_hour["statistic"] == statistic)
    ]
    table = rows.pivot(index="weekday", columns="hour", values=column).reindex(
        index=range(7), columns=range(24)
    )
    table.index = list(WEEKDAYS)
    return table
