"""Many synthetic calls, time-ordered, written chunk by chunk to a folder of Parquet files.

:func:`~disposition.synthetic_calls.sample_calls` draws every call in one process, which holds
them all. For tens of millions of calls the world's days are cut into consecutive periods, each
holding about the same share of the world's calls, and each period's calls are drawn on their own
(``sample_calls(..., period=(start, end))``, a seed of their own) and written as one file. Every
call of a file is earlier than every call of the next file, so the whole folder is in time order
and temporal training windows cut across it mean what they say.

What differs from one draw of the same size: today's practice (the top ``remote_share`` of
judgements closed) and the world's log-odds level (solved so that ``adverse_rate`` of closures
end badly) are set per period, not once over all of them (each chunk's ``intercept`` is returned).

Library code: no Hydra, no MLflow. :func:`write_chunk` is a plain function of plain values, so an
engine can map it over worker processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from disposition.synthetic_calls import FollowUp, Practice, sample_calls
from mlops.errors import ConfigError


@dataclass(frozen=True)
class Chunk:
    """One period's calls: days ``start <= day < end`` (ISO dates), ``n_calls`` of them, ids from
    ``first_id``, drawn with ``seed`` into ``part-<index>.parquet``."""

    index: int
    start: str
    end: str
    n_calls: int
    first_id: int
    seed: int


def plan_chunks(counts: pd.DataFrame, n_calls: int, n_chunks: int, seed: int) -> list[Chunk]:
    """Cut the days of ``counts`` into ``n_chunks`` consecutive periods of about equal calls.

    Each period gets its share of ``n_calls`` in proportion to the world's calls in it (the shares
    add up to ``n_calls`` exactly), so the calls per day follow the world's daily counts over the
    whole set. Seeds are independent streams of ``seed`` (numpy's SeedSequence), one per chunk.
    """
    per_day = counts.groupby(pd.to_datetime(counts["ds"]))["y"].sum().sort_index()
    if not 1 <= n_chunks <= len(per_day):
        raise ConfigError(f"n_chunks must be from 1 to the {len(per_day)} days of the counts, got {n_chunks}")
    if n_calls < 100 * n_chunks:
        raise ConfigError(f"n_calls must be at least 100 per chunk ({100 * n_chunks}), got {n_calls}")
    share = per_day.cumsum().to_numpy() / per_day.sum()
    # First day of each period: the day at which the cumulative share passes k / n_chunks.
    cuts = np.searchsorted(share, np.arange(1, n_chunks) / n_chunks, side="right")
    cuts = np.unique(np.clip(cuts, 1, len(per_day) - 1))
    edges = [0, *cuts.tolist(), len(per_day)]
    if len(edges) - 1 != n_chunks:
        raise ConfigError(f"n_chunks {n_chunks}: the counts' days cannot be cut into that many periods")
    days = per_day.index
    weights = np.array([per_day.iloc[a:b].sum() for a, b in zip(edges[:-1], edges[1:], strict=True)], float)
    sizes = _apportion(n_calls, weights)
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n_chunks)]
    first_ids = np.concatenate([[1], 1 + np.cumsum(sizes)[:-1]])
    end_of = [days[b].date().isoformat() if b < len(days) else None for b in edges[1:]]
    return [
        Chunk(k, days[a].date().isoformat(), end_of[k], int(sizes[k]), int(first_ids[k]), seeds[k])
        for k, a in enumerate(edges[:-1])
    ]


def write_chunk(
    chunk: Chunk,
    counts: pd.DataFrame,
    population: pd.DataFrame,
    age_rate_ratio: Mapping[str, float],
    folder: str,
    row_group_size: int,
    practice: Mapping | None = None,
    followup: Mapping | None = None,
) -> dict:
    """Draw one chunk's calls and write them as ``<folder>/part-<index>.parquet``; its summary.

    The file appears whole or not at all (written beside it, then renamed)."""
    sample = sample_calls(
        counts,
        population,
        age_rate_ratio,
        chunk.n_calls,
        chunk.seed,
        Practice(**(practice or {})),
        FollowUp(**(followup or {})),
        (chunk.start, chunk.end),
    )
    calls = sample.calls
    calls["call_id"] = calls["call_id"] + (chunk.first_id - 1)
    path = Path(folder) / f"part-{chunk.index:05d}.parquet"
    partial = path.with_suffix(".parquet.partial")
    calls.to_parquet(partial, index=False, row_group_size=row_group_size)
    partial.replace(path)
    return {
        "index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "n_calls": len(calls),
        "first_call": calls["call_time"].iloc[0],
        "last_call": calls["call_time"].iloc[-1],
        "intercept": sample.intercept,
        "safe_remote": float(calls["safe_remote"].mean()),
    }


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to ``weights`` that add up to ``total`` (largest remainders)."""
    exact = total * weights / weights.sum()
    sizes = np.floor(exact).astype(np.int64)
    extra = np.argsort(-(exact - sizes), kind="stable")[: total - int(sizes.sum())]
    sizes[extra] += 1
    return sizes
