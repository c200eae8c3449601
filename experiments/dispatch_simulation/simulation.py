"""A discrete-event simulation of a clinical hub and an ambulance fleet (plain Python, ``heapq``).

Every call arrives at its ``call_time``. Without a hub it waits for an ambulance. With a hub,
a call the disposition model recommends for remote closure first goes to a clinician, who closes
it by telephone or, with probability ``1 - p_safe_remote``, sends it on for an ambulance; the
response time of such a call counts from the original call, so time in the hub is not hidden.

Free ambulances take the waiting call of the most urgent category first (C1 before C2 ...), the
oldest first within a category. An ambulance is busy for travel, time on scene and, for a conveyed
patient, the journey to hospital and handover. Geography is left out: one pooled fleet with
random travel times, which is enough to show how the hub changes queueing for ambulances.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CATEGORY_RANK = {"C1": 1, "C2": 2, "C3": 3, "C4": 4}


@dataclass(frozen=True)
class Settings:
    """Resources and service times (minutes). Defaults are round figures of English services.

    Attributes
    ----------
    ambulances : int
        Vehicles on shift at all times.
    clinicians : int
        Hub clinicians assessing calls by telephone at all times.
    travel_median : dict
        Median travel time to the scene by category (lognormal, ``travel_sigma`` on the log scale):
        the nearest vehicle on blue lights for C1, less haste for lower categories.
    on_scene_mean : float
        Mean time on scene (exponential).
    conveyance_share : float
        Share of attended patients taken to hospital (AmbSYS: about two in three).
    hospital_mean : float
        Mean journey to hospital plus handover for a conveyed patient (exponential).
    assessment_mean : float
        Mean length of a clinician's telephone assessment (exponential).
    patience_mean : float or None
        Mean minutes a caller sent to the hub waits for a clinician before hanging up (exponential);
        one who does leaves without an assessment or a response (outcome ``abandoned``). None:
        nobody hangs up.
    """

    ambulances: int = 145
    clinicians: int = 12
    travel_median: dict = field(default_factory=lambda: {"C1": 5.5, "C2": 9.0, "C3": 12.0, "C4": 12.0})
    travel_sigma: float = 0.45
    on_scene_mean: float = 35.0
    conveyance_share: float = 0.68
    hospital_mean: float = 60.0
    assessment_mean: float = 20.0
    patience_mean: float | None = None


def simulate(calls: pd.DataFrame, settings: Settings, with_hub: bool, seed: int = 0) -> pd.DataFrame:
    """Run one week (or any period) of calls through the hub and the fleet.

    Parameters
    ----------
    calls : DataFrame
        One row per call: ``call_time`` (datetime), ``category`` (``C1``-``C4``),
        ``recommend_remote`` (bool) and ``p_safe_remote`` (float), as the disposition model answers.
    settings : Settings
        Fleet, hub and service times.
    with_hub : bool
        Whether recommended calls go to the hub first; without it every call waits for an ambulance.
    seed : int
        Seed for the service times and the clinicians' decisions.

    Returns
    -------
    DataFrame
        The calls with ``outcome`` (``closed_remotely`` or ``attended``), ``response_min``
        (minutes from the call to an ambulance at the scene; missing for calls closed remotely) and
        ``hub_wait_min`` (minutes from the call to a clinician starting the assessment; missing for
        calls not sent to the hub and for those who hung up, outcome ``abandoned``).
    """
    rng = np.random.default_rng(seed)
    start = calls["call_time"].min()
    arrival = ((calls["call_time"] - start).dt.total_seconds() / 60).to_numpy()
    rank = calls["category"].map(CATEGORY_RANK).to_numpy()
    to_hub = calls["recommend_remote"].to_numpy(dtype=bool) & with_hub
    # Drawn up front, one per call, so that both runs (with and without hub) share the same draws.
    escalate = rng.random(len(calls)) > calls["p_safe_remote"].to_numpy()
    median = calls["category"].map(settings.travel_median).to_numpy(dtype=float)
    travel = median * rng.lognormal(0.0, settings.travel_sigma, len(calls))
    on_scene = rng.exponential(settings.on_scene_mean, len(calls))
    conveyed = rng.random(len(calls)) < settings.conveyance_share
    hospital = np.where(conveyed, rng.exponential(settings.hospital_mean, len(calls)), 0.0)
    assessment = rng.exponential(settings.assessment_mean, len(calls))
    patient = settings.patience_mean is None  # drawn last, so the draws above do not depend on it
    patience = np.full(len(calls), np.inf) if patient else rng.exponential(settings.patience_mean, len(calls))
    hung_up = np.zeros(len(calls), dtype=bool)

    response = np.full(len(calls), np.nan)
    closed = np.zeros(len(calls), dtype=bool)
    hub_start = np.full(len(calls), np.nan)
    events: list[tuple[float, int, str, int]] = [(t, i, "call", i) for i, t in enumerate(arrival)]
    heapq.heapify(events)
    waiting_ambulance: list[tuple[int, float, int]] = []  # (category rank, call time, call)
    waiting_hub: list[tuple[float, int]] = []  # (call time, call): first come, first served
    free_ambulances, free_clinicians = settings.ambulances, settings.clinicians
    order = len(calls)  # tie-breaker for events scheduled later

    def dispatch(now: float, call: int) -> None:
        nonlocal order
        response[call] = now - arrival[call] + travel[call]
        busy = travel[call] + on_scene[call] + hospital[call]
        order += 1
        heapq.heappush(events, (now + busy, order, "ambulance_free", -1))

    def assess(now: float, call: int) -> None:
        nonlocal order
        hub_start[call] = now
        order += 1
        heapq.heappush(events, (now + assessment[call], order, "assessed", call))

    while events:
        now, _, kind, call = heapq.heappop(events)
        if kind == "call" and to_hub[call]:
            if free_clinicians:
                free_clinicians -= 1
                assess(now, call)
            else:
                heapq.heappush(waiting_hub, (arrival[call], call))
                if not patient:
                    order += 1
                    heapq.heappush(events, (now + patience[call], order, "hangs_up", call))
            continue
        if kind == "hangs_up":  # still waiting: leaves the queue (taken out when it reaches the front)
            hung_up[call] = np.isnan(hub_start[call])
            continue
        if kind == "assessed":
            while waiting_hub and hung_up[waiting_hub[0][1]]:
                heapq.heappop(waiting_hub)
            if waiting_hub:
                assess(now, heapq.heappop(waiting_hub)[1])
            else:
                free_clinicians += 1
            if not escalate[call]:
                closed[call] = True
                continue
        if kind in ("call", "assessed"):  # the call needs an ambulance now
            if free_ambulances:
                free_ambulances -= 1
                dispatch(now, call)
            else:
                heapq.heappush(waiting_ambulance, (rank[call], arrival[call], call))
        elif kind == "ambulance_free":
            if waiting_ambulance:
                dispatch(now, heapq.heappop(waiting_ambulance)[2])
            else:
                free_ambulances += 1

    out = calls[["call_time", "category"]].copy()
    out["outcome"] = np.select([closed, hung_up], ["closed_remotely", "abandoned"], "attended")
    out["response_min"] = response
    out["hub_wait_min"] = hub_start - arrival
    return out


# ARP standards (NHS England): mean and 90th centile response in minutes; C3 and C4 have only a 90th.
ARP_STANDARDS = {"C1": (7, 15), "C2": (18, 40), "C3": (None, 120), "C4": (None, 180)}


def response_table(result: pd.DataFrame) -> pd.DataFrame:
    """Mean and 90th-centile response by category beside the ARP standards, and whether each is met."""
    rows = []
    for category, (mean_std, p90_std) in ARP_STANDARDS.items():
        times = result.loc[(result["category"] == category) & result["response_min"].notna(), "response_min"]
        mean, p90 = float(times.mean()), float(times.quantile(0.9))
        met = p90 <= p90_std and (mean_std is None or mean <= mean_std)
        rows.append(
            {
                "category": category,
                "calls": int((result["category"] == category).sum()),
                "attended": len(times),
                "mean_min": mean,
                "p90_min": p90,
                "standard": (f"mean {mean_std}, " if mean_std else "") + f"90th {p90_std}",
                "met": "yes" if met else "no",
            }
        )
    return pd.DataFrame(rows)
