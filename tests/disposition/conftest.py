"""Fixtures for the remote-closure tests: small call samples from the synthetic world, fast configs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from disposition.synthetic_calls import sample_calls

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
SYNTHETIC = ROOT / "data" / "synthetic"


@pytest.fixture(scope="session")
def world() -> dict:
    """The committed synthetic world the call generator samples from."""
    return {
        "counts": pd.read_csv(SYNTHETIC / "daily_counts.csv"),
        "population": pd.read_csv(SYNTHETIC / "population.csv"),
        "ratio": OmegaConf.to_container(OmegaConf.load(SYNTHETIC / "world.yaml").world.age_rate_ratio),
    }


@pytest.fixture(scope="session")
def calls(world) -> pd.DataFrame:
    """24,000 synthetic calls, 2018-2023 (seeded): big enough for a threshold, quick to fit."""
    return sample_calls(world["counts"], world["population"], world["ratio"], 24_000, seed=7).calls


@pytest.fixture(scope="session")
def calls_path(tmp_path_factory, calls) -> Path:
    path = tmp_path_factory.mktemp("calls") / "calls.parquet"
    calls.to_parquet(path, index=False)
    return path


def compose_disposition(overrides: list[str]):
    """Compose the disposition app's config as the entry point would."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="disposition", overrides=overrides)


def fast_overrides(calls_path: Path, store_dir: Path) -> list[str]:
    """Overrides that keep a full training run to a few seconds."""
    return [
        f"calls.path={calls_path}",
        f"tracking.store_dir={store_dir}",
        "classifier.estimator.n_estimators=40",
        "classifier.estimator.n_jobs=1",
        "tuning.max_rows=6000",
        "tuning.n_splits=2",
        "classifier.search={num_leaves:[7,15]}",
        "baseline_max_rows=6000",
        "reasons.table_calls=1000",
        # Promotion needs the TEST window's one-sided bound within the limit. On these 24,000 calls
        # (4,800 in the test window) 1 % cannot be shown: a limit the size supports, and a threshold
        # designed so the test window confirms it with probability 0.9 (bound ~4.4 % at seed 7), so
        # the promotion path does not hang on a coin flip. The 1 % path: tests/disposition/test_promotion.py.
        "safety.limit=0.05",
        "safety.confirm_power=0.9",
    ]
