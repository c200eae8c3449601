"""Hub staffing from Erlang C against the dispatch simulation, for the same arrivals and service times.

For each hourly rate of calls sent to the clinical hub, Poisson arrivals over ``days`` days and
exponential assessments (the dispatch simulation's own draws) run through the simulation's hub
(``experiments/dispatch_simulation/simulation.py``: clinicians first come, first served, every call
closed, so the fleet plays no part) with a range of clinicians. The simulation's answer is the
fewest clinicians whose simulated share of calls answered within the target time reaches the
target; Erlang C's is :func:`forecasting.projection.erlang.agents_needed`. Target (issue 14): within
10 %.

Run: ``python -m experiments.bench benchmark=projection_workforce_erlang``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.dispatch_simulation.simulation import Settings, simulate
from experiments.harness import BenchmarkReport
from experiments.projection.common import markdown_table
from forecasting.projection.erlang import agents_needed, mean_wait, service_level

NAME = "projection_workforce_erlang"


def poisson_calls(rate_per_hour: float, days: int, rng: np.random.Generator) -> pd.DataFrame:
    """Calls all sent to the hub and all closed there, arriving as a Poisson process."""
    n = rng.poisson(rate_per_hour * 24 * days)
    minutes = np.sort(rng.uniform(0, 24 * 60 * days, n))
    return pd.DataFrame(
        {
            "call_time": pd.Timestamp("2035-01-08") + pd.to_timedelta(minutes, unit="min"),
            "category": "C3",
            "recommend_remote": True,
            "p_safe_remote": 1.0,
        }
    )


def simulated_level(calls: pd.DataFrame, clinicians: int, service: float, within: float, seed: int) -> dict:
    settings = Settings(ambulances=10_000, clinicians=clinicians, assessment_mean=service)
    result = simulate(calls, settings, with_hub=True, seed=seed)
    start = result["call_time"].min() + pd.Timedelta(hours=6)  # the queue starts empty: leave a warm-up out
    waits = result.loc[result["call_time"] >= start, "hub_wait_min"].to_numpy()
    return {"level": float(np.mean(waits <= within + 1e-9)), "mean_wait": float(np.mean(waits))}


def run(
    workdir: Path,
    rates_per_hour: list,
    service_min: float,
    within_min: float,
    target: float,
    days: int,
    seed: int,
) -> BenchmarkReport:
    started = time.perf_counter()
    rows = []
    for i, rate in enumerate(rates_per_hour):
        lam = rate / 60
        erlang = int(agents_needed(lam, service_min, within_min, target))
        calls = poisson_calls(rate, days, np.random.default_rng([seed, i]))
        levels = {}
        for c in range(max(1, erlang - 3), erlang + 4):
            levels[c] = simulated_level(calls, c, service_min, within_min, seed + i)
        met = [c for c, v in levels.items() if v["level"] >= target]
        simulated = min(met) if met else float("nan")
        rows.append(
            {
                "calls to the hub per hour": rate,
                "offered load (Erlangs)": lam * service_min,
                "clinicians, Erlang C": erlang,
                "clinicians, simulation": simulated,
                "difference (%)": 100 * (erlang - simulated) / simulated,
                "answered in time, Erlang C at its staffing": float(
                    service_level(erlang, lam, service_min, within_min)
                ),
                "answered in time, simulated at that staffing": levels[erlang]["level"],
                "mean wait (min), Erlang C": float(mean_wait(erlang, lam, service_min)),
                "mean wait (min), simulated": levels[erlang]["mean_wait"],
                "calls simulated": len(calls),
            }
        )
    table = pd.DataFrame(rows)
    worst = float(table["difference (%)"].abs().max())
    elapsed = time.perf_counter() - started
    text = f"""# Hub staffing: Erlang C against the dispatch simulation

Produced by `python -m experiments.bench benchmark={NAME}` ({elapsed:.0f} s, shared 2-core machine),
logged to the MLflow experiment `benchmark-{NAME}`. Script: `experiments/projection/workforce_erlang.py`.

Same arrivals and service times for both: Poisson calls to the hub at each rate for {days} days,
assessments exponential with mean {service_min:g} min (the simulation's own draws), clinicians first
come first served, no abandonment. Target: {target:.0%} of calls start their assessment within
{within_min:g} min. The simulation's staffing is the fewest clinicians (tried: Erlang's answer -3 to +3)
whose simulated share answered in time reaches the target (the first {6} hours left out as warm-up).

{markdown_table(table, "{:.3f}")}

**Largest difference: {worst:.1f} %** (target: within 10 %: {"met" if worst <= 10 else "NOT met"}).

Limits: stationary hours (the simulation keeps the same clinicians all day, so each rate is run as
a steady state); the workforce module staffs each hour of the winter week as if it were such a
steady state, which understates the queue carried over from a busy hour into the next. Callers do
not hang up (Erlang C; Erlang A with abandonment is not implemented), so staffing errs on the
generous side where callers would abandon.
"""
    metrics = {"max_abs_difference_pct": worst, "seconds": elapsed}
    for row in table.itertuples(index=False):
        metrics[f"difference_pct_rate_{row[0]:g}"] = float(row[4])
    return BenchmarkReport(markdown=text, metrics=metrics, tables={"": table})
