"""The oracle benchmark's origin-information oracle: what it divides out and what it keeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from experiments.harness import ROOT
from experiments.oracle_benchmark.run import ordinary_days, origin_information_mean, world_spec
from forecasting.synthetic import World


def spec(features: list[str]) -> dict:
    base = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/generate.yaml").world, resolve=True)
    hard = OmegaConf.to_container(OmegaConf.load(ROOT / "conf/benchmark/oracle.yaml").params.hard_world)
    return world_spec(base, hard, features)


def rows(spec: dict) -> pd.DataFrame:
    """Every area's days as backtest rows from one origin: a truth of 100 times the world's events."""
    world = World.from_dict(spec)
    areas = [area.name for area in world.areas]
    days = pd.date_range(world.start, world.end, freq="D")
    factor = world.events.demand_factor(areas, days, world.seed)  # (area, day)
    cutoff = pd.Timestamp("2019-12-31")
    later = days > cutoff
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat([f"{a}/C1" for a in areas], later.sum()),
            "ds": np.tile(days[later], len(areas)),
            "y_expected": 100 * factor[:, later].ravel(),
        }
    )
    return frame.assign(cutoff=cutoff, h=(frame["ds"] - cutoff).dt.days)


def test_a_world_without_unforeseeable_events_keeps_the_truth():
    world = spec(["calendar", "level_shift", "pandemic", "capacity"])
    backtest = rows(world)
    assert backtest["y_expected"].min() < 90  # the pandemic and the level shift are in the truth
    np.testing.assert_allclose(origin_information_mean(world, backtest), backtest["y_expected"])
    assert all(keep.all() for keep in ordinary_days(world, backtest).values())


def test_outage_and_heatwave_days_are_not_foreseen():
    world = spec(["outages", "heatwaves"])
    backtest = rows(world)
    days = ordinary_days(world, backtest)
    outage, odd = ~days["no outage"], ~days["no outage or heatwave"]
    assert 0 < outage.sum() < odd.sum() < len(backtest) / 20  # a few outage days, a few more heat days
    assert (backtest["y_expected"][outage] < 20).all() and (backtest["y_expected"][odd & ~outage] > 100).all()
    np.testing.assert_allclose(origin_information_mean(world, backtest), 100.0)


def test_the_ar_deviation_decays_from_its_state_at_the_origin():
    world = spec(["ar_deviation"])
    backtest = rows(world)
    known = origin_information_mean(world, backtest)
    far = backtest["h"] > 60  # rho^60 ~ 0: the guess is the stationary mean factor, 1
    np.testing.assert_allclose(known[far], 100.0, rtol=1e-3)
    assert (backtest["y_expected"][far] - 100.0).abs().mean() > 0.5  # while the truth still moves
    # One day ahead the state still tells: over many origins the guess follows the truth (as
    # rho = 0.7 says) and misses it by the one-day innovation only.
    one_day = rows(world)
    one_day = one_day.assign(cutoff=one_day["ds"] - pd.Timedelta(days=1), h=1)
    guess = origin_information_mean(world, one_day) - 100.0
    truth = one_day["y_expected"] - 100.0
    assert 0.6 < np.corrcoef(guess, truth)[0, 1] < 0.8
    assert (guess - truth).std() < 0.8 * truth.std()
