"""Detection delay and false alarms of the under-triage monitor (disposition/monitoring.py).

``python -m experiments.monitoring.run`` rewrites experiments/results/monitoring.md and
monitoring.csv. Seeded, vectorised over streams: about a minute on two cores.

- Detection delay: calls from the moment the true rate first exceeds the 1 % limit until the
  alarm, over 200 seeded streams per scenario: an injected doubling (at deployment, or after 5,000
  good calls) and a linear drift like the synthetic world's ageing drift.
- False alarms: 200 streams of 100,000 calls at a stable 0.7 % and at exactly the limit; beside
  it, the same streams checked with a fixed-sample test (one-sided Clopper-Pearson lower bound
  above the limit) looked at every 100 calls, which is what the sequential test replaces.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import beta

from disposition.monitoring import first_alarms

LIMIT = 0.01
ALPHA = 0.05
STREAMS_IN_APP = 7  # overall + 4 age bands + 2 sexes: the default app tests each at alpha / 7
N_STREAMS = 200
HORIZON = 60_000
RESULTS = Path(__file__).resolve().parents[1] / "results"


def rates(kind: str, **p) -> tuple[np.ndarray, int]:
    """True rate per call up to HORIZON calls after the first (0-based) above the limit; and that call."""
    n = 10 * HORIZON
    if kind == "step":
        r = np.full(n, p["before"])
        r[p["at"] :] = p["after"]
    else:
        r = np.linspace(p["start"], p["end"], p["over"])
        r = np.concatenate([r, np.full(max(n - p["over"], 0), p["end"])])[:n]
    onset = int(np.argmax(r > LIMIT))
    return r[: onset + HORIZON], onset


def simulate(rate: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((N_STREAMS, len(rate))) < rate).astype(np.int8)


def delay_row(name: str, rate: np.ndarray, onset: int, seed: int) -> list[dict]:
    x = simulate(rate, seed)
    rows = []
    for label, alpha in (
        ("single stream", ALPHA),
        (f"app overall (alpha/{STREAMS_IN_APP})", ALPHA / STREAMS_IN_APP),
    ):
        at = first_alarms(x, LIMIT, alpha)
        early = (at > 0) & (at <= onset)  # an alarm before the rate crossed the limit is false
        delay = np.where(at > onset, at - onset, np.inf)  # never = censored at the horizon
        rows.append(
            {
                "scenario": name,
                "test": label,
                "onset_call": onset + 1,
                "detected_share": float(np.isfinite(delay).mean()),
                "median_delay": float(np.quantile(delay, 0.5, method="inverted_cdf")),
                "p90_delay": float(np.quantile(delay, 0.9, method="inverted_cdf")),
                "alarms_before_onset": int(early.sum()),
            }
        )
    return rows


def naive_false_alarms(x: np.ndarray, every: int = 100) -> float:
    """Share of streams where a one-sided 95 % Clopper-Pearson lower bound ever exceeds the limit."""
    checks = np.arange(every, x.shape[1] + 1, every)
    bad = np.cumsum(x, axis=1)[:, checks - 1]
    lower = np.where(bad > 0, beta.ppf(ALPHA, np.maximum(bad, 1), checks - bad + 1), 0.0)
    return float((lower > LIMIT).any(axis=1).mean())


def main() -> None:
    started, load = time.time(), os.getloadavg()[0]
    delays = []
    scenarios = [
        ("doubling at deployment: 1 % -> 2 %", *rates("step", before=0.02, after=0.02, at=0)),
        ("doubling at deployment: 0.7 % -> 1.4 %", *rates("step", before=0.014, after=0.014, at=0)),
        (
            "0.7 % for 5,000 calls, then 2 %",
            *rates("step", before=0.007, after=0.02, at=5000),
        ),
        (
            "0.7 % for 5,000 calls, then doubled to 1.4 %",
            *rates("step", before=0.007, after=0.014, at=5000),
        ),
        (
            "drift 0.7 % -> 1.4 % over 50,000 calls",
            *rates("drift", start=0.007, end=0.014, over=50_000),
        ),
        (
            "drift 0.7 % -> 2 % over 50,000 calls",
            *rates("drift", start=0.007, end=0.02, over=50_000),
        ),
    ]
    for seed, (name, rate, onset) in enumerate(scenarios):
        delays += delay_row(name, rate, onset, seed)
    false = []
    for seed, rate in enumerate((0.007, LIMIT), start=100):
        x = simulate(np.full(100_000, rate), seed)
        false.append(
            {
                "true_rate": rate,
                "streams": N_STREAMS,
                "calls_per_stream": 100_000,
                "sequential alpha=0.05": float((first_alarms(x, LIMIT, ALPHA) > 0).mean()),
                f"sequential alpha=0.05/{STREAMS_IN_APP}": float(
                    (first_alarms(x, LIMIT, ALPHA / STREAMS_IN_APP) > 0).mean()
                ),
                "fixed-sample 95 % bound, checked every 100 calls": naive_false_alarms(x),
            }
        )
    elapsed = time.time() - started
    delay_frame, false_frame = pd.DataFrame(delays), pd.DataFrame(false)
    RESULTS.mkdir(exist_ok=True)
    delay_frame.to_csv(RESULTS / "monitoring.csv", index=False)
    false_frame.to_csv(RESULTS / "monitoring_false_alarms.csv", index=False)
    (RESULTS / "monitoring.md").write_text(page(delay_frame, false_frame, elapsed, load), encoding="utf-8")
    print(delay_frame.to_string(index=False))
    print(false_frame.to_string(index=False))
    print(f"{elapsed:.0f} s")


def _calls(value: float) -> str:
    return f"> {HORIZON:,} (not detected)" if not np.isfinite(value) else f"{value:,.0f}"


def page(delays: pd.DataFrame, false: pd.DataFrame, elapsed: float, load: float) -> str:
    lines = [
        "# Safety monitoring: detection delay and false alarms",
        "",
        "`python -m experiments.monitoring.run` (seeded; "
        f"{elapsed:.0f} s on {os.cpu_count()} cores, load {load:.1f} before). The test is "
        "`disposition.monitoring` (what `disposition-monitor` runs): a mixture likelihood-ratio "
        "martingale for H0: under-triage <= 1 %, alarm when the evidence reaches 1/alpha; Ville's "
        "inequality bounds the probability of ever alarming under H0 by alpha. `single stream` tests "
        f"at alpha = {ALPHA}; `app overall` at alpha/{STREAMS_IN_APP}, as the default app does for its "
        f"overall stream beside {STREAMS_IN_APP - 1} subgroup streams (Bonferroni).",
        "",
        f"## Detection delay ({N_STREAMS} streams per scenario, limit 1 %)",
        "",
        "Calls from the first call whose true rate exceeds the limit until the alarm; streams with no "
        f"alarm within {HORIZON:,} calls after it count as not detected (so a median or 90th "
        "percentile shown as not detected means fewer than half / 90 % were).",
        "",
        "| scenario | test | detected | median delay (calls) | 90th percentile | alarms before onset |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in delays.itertuples():
        lines.append(
            f"| {r.scenario} | {r.test} | {100 * r.detected_share:.0f} % | {_calls(r.median_delay)} | "
            f"{_calls(r.p90_delay)} | {r.alarms_before_onset} |"
        )
    lines += [
        "",
        f"## False alarms over long stable streams ({N_STREAMS} streams x 100,000 calls)",
        "",
        "Share of streams that ever alarmed, the test checked after every call.",
        "",
        "| true rate | sequential, alpha 0.05 | sequential, alpha 0.05/7 "
        "| fixed-sample 95 % bound checked every 100 calls |",
        "|---:|---:|---:|---:|",
    ]
    for r in false.itertuples(index=False):
        lines.append(f"| {100 * r[0]:.1f} % | {100 * r[3]:.1f} % | {100 * r[4]:.1f} % | {100 * r[5]:.1f} % |")
    lines += [
        "",
        "## Reading it",
        "",
        "- A model that is bad from deployment (2 % against a 1 % limit) is caught after a median of "
        "about 1,300 remotely closed calls in the default app (about 9 days at 150 remote closures a "
        "day); a true rate of 1.4 % takes several thousand.",
        "- The test is cumulative: calls well below the limit before a change count as evidence of "
        "safety that a later rise must first outweigh, so the same rise is caught later after a good "
        "period, and a slow drift later still. Start a new stream (`outcomes.since=<date>`) after each "
        "review or threshold change; a change-point detector that forgets old calls (e-detector / "
        "CUSUM, with an average-run-length guarantee instead of Ville's) would cut these delays and is "
        "not built yet.",
        "- Under a stable rate at or below the limit the sequential test alarms far less often than "
        "alpha (it is conservative; with 200 streams, 0 of 200 bounds the rate below 1.5 % at 95 % "
        "confidence); the fixed-sample bound checked repeatedly is what it replaces.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
