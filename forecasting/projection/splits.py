"""Splitting projected calls by ARP category and by disposition, with quantiles for each part.

A part that takes share ``p`` of a total with mean ``m`` and spread ``s`` has mean ``p m`` and
variance ``p**2 s**2 + p (1 - p) m``: the total's uncertainty scaled down, plus the binomial noise
of which calls fall in the part. Quantiles of the part keep the total's standardised position
(exact when the total is normal, close for the counts here), so splitting stays cheap enough to do
per request without the simulated paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecasting.projection.scenario import Scenario
from forecasting.synthetic import CATEGORIES

DISPOSITIONS = ("hear_and_treat", "see_and_treat", "conveyed", "needs_ambulance", "needs_ambulance_no_change")
MEASURES = ("calls", *CATEGORIES, *DISPOSITIONS)
PLAIN_NAMES = {
    "calls": "all calls (incidents)",
    "hear_and_treat": "closed remotely (hear and treat)",
    "see_and_treat": "treated on scene",
    "conveyed": "conveyed to hospital",
    "needs_ambulance": "needing an ambulance",
    "needs_ambulance_no_change": "needing an ambulance if remote closure stays at today's share",
}


def quantile_label(q: float) -> str:
    """``0.1 -> 'p10'``, ``0.975 -> 'p97.5'``."""
    return f"p{100 * q:g}"


def shares_by_year(scenario: Scenario, years: Sequence[int], base_year: int) -> pd.DataFrame:
    """Share of calls in each measure (rows: years; columns: :data:`MEASURES`)."""
    years = np.asarray(years, dtype=int)
    remote = scenario.remote_closure.share(years, base_year)
    attended = 1.0 - remote
    shares = {"calls": np.ones(len(years))}
    shares.update({c: np.full(len(years), scenario.category_mix[c]) for c in CATEGORIES})
    shares["hear_and_treat"] = remote
    shares["see_and_treat"] = attended * scenario.attended_split["see_and_treat"]
    shares["conveyed"] = attended * scenario.attended_split["conveyed"]
    shares["needs_ambulance"] = attended
    shares["needs_ambulance_no_change"] = np.full(len(years), 1.0 - scenario.remote_closure.start_share)
    return pd.DataFrame(shares, index=pd.Index(years, name="year"))


def split_part(
    mean: np.ndarray, sd: np.ndarray, quantiles: Mapping[str, np.ndarray], share: np.ndarray
) -> dict[str, np.ndarray]:
    """Mean, sd and quantiles of the part of a total that takes ``share`` of it.

    Parameters
    ----------
    mean, sd : ndarray
        The total's mean and standard deviation.
    quantiles : mapping of str to ndarray
        The total's quantiles by label (``'p10'``...).
    share : ndarray
        Share of the total in the part, broadcastable to ``mean``.
    """
    mean, sd, share = np.asarray(mean, float), np.asarray(sd, float), np.asarray(share, float)
    part_sd = np.sqrt(share**2 * sd**2 + share * (1 - share) * mean)
    out = {"mean": share * mean, "sd": part_sd}
    for label, values in quantiles.items():
        z = np.divide(np.asarray(values, float) - mean, sd, out=np.zeros_like(mean), where=sd > 0)
        out[label] = np.maximum(share * mean + z * part_sd, 0.0)
    return out


def split_table(totals: pd.DataFrame, shares: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Every measure of a table of totals, in long format.

    Parameters
    ----------
    totals : DataFrame
        One row per period with ``year``, ``mean``, ``sd`` and the quantile ``labels`` of all calls.
    shares : DataFrame
        From :func:`shares_by_year`.

    Returns
    -------
    DataFrame
        ``totals``' other columns, then ``measure``, ``mean``, ``sd`` and the quantile labels.
    """
    keys = [c for c in totals.columns if c not in ("mean", "sd", *labels)]
    frames = []
    for measure in shares.columns:
        share = shares[measure].reindex(totals["year"]).to_numpy()
        part = split_part(totals["mean"], totals["sd"], {q: totals[q] for q in labels}, share)
        frames.append(totals[keys].assign(measure=measure, **part))
    return pd.concat(frames, ignore_index=True)
