"""Hub staffing from Erlang C and Erlang A against the dispatch simulation, for the same arrivals,
service times and patience.

For each hourly rate of calls sent to the clinical hub, Poisson arrivals over ``days`` days and
exponential assessments (the dispatch simulation's own draws) run through the simulation's hub
(``experiments/dispatch_simulation/simulation.py``: clinicians first come, first served, every call
closed, so the fleet plays no part) with a range of clinicians. The simulation's answer is the
fewest clinicians whose simulated share of calls answered within the target time reaches the
target; the model's is :func:`forecasting.projection.erlang.agents_needed`: Erlang C when nobody
hangs up, Erlang A when callers hang up after an exponential patience (the simulation draws the
same). A caller who hangs up counts as not answered in time, in both. Target (issue 14): within 10 %.

Run: ``python -m experiments.bench benchmark=projection_workforce_erlang``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.dispatch_simulation.simulation import Settings, simulate
from experiments.harness import BenchmarkReport
from experiments.projection.common import markdown_table
from forecasting.projection.erlang import agents_needed, erlang_a, service_level

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


def simulated_level(
    calls: pd.DataFrame, clinicians: int, service: float, within: float, patience: float | None, seed: int
) -> dict:
    settings = Settings(
        ambulances=10_000, clinicians=clinicians, assessment_mean=service, patience_mean=patience
    )
    result = simulate(calls, settings, with_hub=True, seed=seed)
    start = result["call_time"].min() + pd.Timedelta(hours=6)  # the queue starts empty: leave a warm-up out
    kept = result[result["call_time"] >= start]
    waits = kept["hub_wait_min"].to_numpy()  # missing for a caller who hung up: not answered in time
    return {
        "level": float(np.mean(waits <= within + 1e-9)),
        "hung_up": float(np.mean(kept["outcome"] == "abandoned")),
    }


def modelled(clinicians: int, lam: float, service: float, within: float, patience: float | None) -> tuple:
    """Share answered in time and share hung up, by Erlang C (no patience) or Erlang A."""
    if patience is None:
        return float(service_level(clinicians, lam, service, within)), 0.0
    answered, hung_up = erlang_a(clinicians, lam, service, within, patience)
    return float(answered), float(hung_up)


def _hang_up_tradeoff(table: pd.DataFrame) -> str:
    """What counting hung-up callers as unanswered does to staffing: fewer clinicians, more hang-ups."""
    rate = "calls to the hub per hour"
    erlang_c = table[table["model"] == "Erlang C"].set_index(rate)["clinicians, model"]
    lines = []
    for model, part in table[table["model"] != "Erlang C"].groupby("model", sort=False):
        fewer = erlang_c.reindex(part[rate]).to_numpy() - part["clinicians, model"].to_numpy()
        lines.append(
            f"- {model}: {fewer.min():.0f}-{fewer.max():.0f} clinicians fewer than Erlang C, with "
            f"{100 * part['hung up, model'].min():.0f}-{100 * part['hung up, model'].max():.0f} % of callers "
            "hanging up at that staffing"
        )
    return (
        "Callers who hang up leave the queue, so the rest wait less: the same target is met with fewer\n"
        "clinicians, and the callers lost are the price (set the target with them in mind):\n\n"
        + "\n".join(lines)
    )


def run(
    workdir: Path,
    rates_per_hour: list,
    service_min: float,
    within_min: float,
    target: float,
    days: int,
    seed: int,
    patience_min: list,
) -> BenchmarkReport:
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    rows = []
    for patience in patience_min:
        label = "Erlang C" if patience is None else f"Erlang A, patience {patience:g} min"
        for i, rate in enumerate(rates_per_hour):
            lam = rate / 60
            model = int(agents_needed(lam, service_min, within_min, target, patience))
            calls = poisson_calls(rate, days, np.random.default_rng([seed, i]))
            levels = {}
            for c in range(max(1, model - 3), model + 4):
                levels[c] = simulated_level(calls, c, service_min, within_min, patience, seed + i)
            met = [c for c, v in levels.items() if v["level"] >= target]
            simulated = min(met) if met else float("nan")
            answered, hung_up = modelled(model, lam, service_min, within_min, patience)
            rows.append(
                {
                    "model": label,
                    "calls to the hub per hour": rate,
                    "offered load (Erlangs)": lam * service_min,
                    "clinicians, model": model,
                    "clinicians, simulation": simulated,
                    "difference (%)": 100 * (model - simulated) / simulated,
                    "answered in time, model": answered,
                    "answered in time, simulated": levels[model]["level"],
                    "hung up, model": hung_up,
                    "hung up, simulated": levels[model]["hung_up"],
                    "calls simulated": len(calls),
                }
            )
    table = pd.DataFrame(rows)
    differences = table["difference (%)"].abs()
    worst = float(differences.max()) if differences.notna().all() else float("nan")
    by_model = table.groupby("model", sort=False)["difference (%)"].apply(lambda d: d.abs().max())
    tradeoff = _hang_up_tradeoff(table)
    elapsed = time.perf_counter() - started
    patiences = ", ".join(f"{p:g}" for p in patience_min if p is not None)
    text = f"""# Hub staffing: Erlang C and Erlang A against the dispatch simulation

Produced by `python -m experiments.bench benchmark={NAME}` ({elapsed:.0f} s on a shared 2-core machine, load
average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after), logged to the MLflow experiment
`benchmark-{NAME}`. Script: `experiments/projection/workforce_erlang.py`.

Same arrivals and service times for model and simulation: Poisson calls to the hub at each rate for
{days} days, assessments exponential with mean {service_min:g} min (the simulation's own draws), clinicians
first come first served. Erlang C: nobody hangs up. Erlang A: each caller hangs up after an
exponential patience with mean {patiences} min unless a clinician has started (the simulation draws
the same; `workforce.hub.patience_min` in `conf/workforce/default.yaml`). Target: {target:.0%} of calls
start their assessment within {within_min:g} min, a caller who hangs up counting as not answered in time.
The simulation's staffing is the fewest clinicians (tried: the model's answer -3 to +3) whose
simulated share answered in time reaches the target (the first 6 hours left out as warm-up); the
shares below are at the model's staffing.

{markdown_table(table, "{:.3f}")}

**Largest difference: {worst:.1f} %** (target: within 10 %: {"met" if worst <= 10 else "NOT met"}); by model:
{", ".join(f"{m} {v:.1f} %" for m, v in by_model.items())}.

{tradeoff}

Limits: stationary hours (the simulation keeps the same clinicians all day, so each rate is run as
a steady state); the workforce module staffs each hour of the winter week as if it were such a
steady state, which understates the queue carried over from a busy hour into the next. Patience is
exponential in both model and simulation; real patience is not (and no patience of hub callers is
measured here), so Erlang A is only as good as the `patience_min` a service sets from its own data.
"""
    metrics = {"max_abs_difference_pct": worst, "seconds": elapsed}
    for row in table.itertuples(index=False):
        key = "c" if row.model == "Erlang C" else "a_" + row.model.split()[-2]
        metrics[f"difference_pct_{key}_rate_{row[1]:g}"] = float(row[5])
    return BenchmarkReport(markdown=text, metrics=metrics, tables={"": table})
