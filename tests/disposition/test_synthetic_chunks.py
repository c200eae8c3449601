"""Synthetic calls drawn period by period into a folder: time-ordered, distinct, reproducible."""

from __future__ import annotations

import pandas as pd
import pytest

from disposition.synthetic_chunks import plan_chunks, write_chunk
from mlops.errors import ConfigError


def test_periods_are_consecutive_and_sizes_add_up(world):
    chunks = plan_chunks(world["counts"], 10_001, 4, seed=3)
    assert sum(c.n_calls for c in chunks) == 10_001
    assert [c.first_id for c in chunks] == [1, *(1 + sum(c.n_calls for c in chunks[:k]) for k in (1, 2, 3))]
    assert chunks[0].start == pd.to_datetime(world["counts"]["ds"]).min().date().isoformat()
    assert [c.end for c in chunks[:-1]] == [c.start for c in chunks[1:]] and chunks[-1].end is None
    assert len({c.seed for c in chunks}) == 4
    # About equal shares of the world's calls: each period holds about a quarter of them.
    assert all(2_300 <= c.n_calls <= 2_700 for c in chunks)
    assert plan_chunks(world["counts"], 10_001, 4, seed=3) == chunks


def test_written_folder_is_time_ordered_with_distinct_ids(world, tmp_path):
    chunks = plan_chunks(world["counts"], 1_200, 3, seed=0)
    args = (world["counts"], world["population"], world["ratio"], str(tmp_path), 150)
    summaries = [write_chunk(chunk, *args) for chunk in chunks]
    calls = pd.read_parquet(tmp_path)  # files in name order: part-00000, part-00001, ...
    assert len(calls) == 1_200 and calls["call_id"].tolist() == list(range(1, 1_201))
    assert calls["call_time"].is_monotonic_increasing
    for chunk, summary in zip(chunks, summaries, strict=True):
        assert summary["first_call"] >= pd.Timestamp(chunk.start)
        assert chunk.end is None or summary["last_call"] < pd.Timestamp(chunk.end)
    assert not list(tmp_path.glob("*.partial"))
    (tmp_path / "again").mkdir()
    again = write_chunk(chunks[1], *args[:3], str(tmp_path / "again"), 150)
    assert again["intercept"] == summaries[1]["intercept"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "again"), pd.read_parquet(tmp_path / "part-00001.parquet")
    )


def test_refuses_more_chunks_than_days_or_too_few_calls(world):
    with pytest.raises(ConfigError, match="n_chunks"):
        plan_chunks(world["counts"], 10**9, 10**6, seed=0)
    with pytest.raises(ConfigError, match="n_calls"):
        plan_chunks(world["counts"], 500, 10, seed=0)
