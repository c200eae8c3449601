"""How much can the synthetic world close at all within the limit? (issue 12, synthetic-world targets)

For a call set drawn by the committed generator, calls no hard rule excludes are ranked by the
ORACLE's true probability of safe closure, and the most that can be closed is read off the
EXPECTED observed under-triage (no sampling noise): a recommended call is recorded unsafe with
probability ``sensitivity * (1 - p) + false_positive * p`` (disposition.synthetic_calls.FollowUp).
This is the ceiling of any score, with infinitely many calibration calls; a finite calibration
window and a test window that must confirm the limit lower it further. The generator is not tuned.

Run: ``python -m experiments.disposition_safety.world_cap <calls.parquet> ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from disposition.safety import excluded_by_rules, rules_from_mapping
from experiments.harness import ROOT


def cap(calls: pd.DataFrame, rate: float, sensitivity: float, false_positive: float) -> dict:
    """Largest share of ALL calls whose expected observed under-triage (and whose true one) stays
    within ``rate`` when the oracle closes its safest eligible calls first."""
    cfg = OmegaConf.load(ROOT / "conf" / "calls" / "synthetic.yaml")
    rules = rules_from_mapping(OmegaConf.to_container(cfg.standard_never_remote))
    excluded, _ = excluded_by_rules(calls, rules)
    p = np.sort(calls.loc[~excluded, "p_safe_remote_true"].to_numpy())[::-1]
    n = np.arange(1, len(p) + 1)
    observed = np.cumsum(sensitivity * (1 - p) + false_positive * p) / n
    true = np.cumsum(1 - p) / n
    return {
        "calls": len(calls),
        "eligible share": len(p) / len(calls),
        "closable share (observed rate)": float(n[observed <= rate].max(initial=0)) / len(calls),
        "closable share (true rate)": float(n[true <= rate].max(initial=0)) / len(calls),
        "observed floor (top 1 % of eligible)": float(observed[max(len(p) // 100 - 1, 0)]),
        "practice share": float(calls["closed_remotely"].mean()) if "closed_remotely" in calls else np.nan,
        "practice observed adverse": float(calls.loc[calls["closed_remotely"] == 1, "adverse_outcome"].mean())
        if "closed_remotely" in calls
        else np.nan,
    }


def main(paths: list[str]) -> pd.DataFrame:
    gen = OmegaConf.load(ROOT / "conf" / "disposition_generate.yaml")
    rows = []
    for path in paths:
        calls = pd.read_parquet(path)
        times = pd.to_datetime(calls["call_time"])
        late = times >= times.quantile(0.8)  # the benchmark's test window: the latest 20 % of calls
        for window, part in (("all", calls), ("latest 20 %", calls[late])):
            for rate in (0.01, 0.0075):
                found = cap(part, rate, float(gen.followup.sensitivity), float(gen.followup.false_positive))
                rows.append({"file": Path(path).name, "window": window, "rate": rate, **found})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    pd.set_option("display.width", 250)
    print(main(sys.argv[1:]).to_string())
