"""Shared fixtures: the project's config tree, the committed synthetic world, small data sets."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
SYNTHETIC_COUNTS = ROOT / "data" / "synthetic" / "daily_counts.csv"
# A handful of series of different sizes keeps model fits quick but realistic.
SMALL_SERIES = ["city/C2", "coast/C3", "moor/C1", "moor/C4"]


# Session fixtures that take seconds to build and serve tests in several files (a trained store and
# its model servers, the corpus's seeded stores, a Dask cluster). `make test` runs two pytest-xdist
# workers with --dist loadfile: each test file runs whole on one worker (its module fixtures, the
# team server among them, are built once), and each worker builds the session fixtures its own tests
# use. The scheduler below also keeps together the files that name one of these, so that it is built
# once; the value names the group.
SHARED_SESSION_FIXTURES = {
    "trained_store": "serving-store",
    "servers": "serving-store",
    "valid_rows": "serving-store",
    "seeded": "corpus-stores",
    "dask_engine": "dask-cluster",
}


def shared_fixture_group(path: str) -> str:
    """The file's group: the first shared session fixture its functions take, else the file itself."""
    try:
        signatures = re.findall(r"\bdef \w+\(([^)]*)\)", (ROOT / path).read_text())
    except OSError:
        return path
    words = {word for signature in signatures for word in re.findall(r"\w+", signature)}
    groups = [group for name, group in SHARED_SESSION_FIXTURES.items() if name in words]
    return groups[0] if groups else path


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # optional: plain pytest runs without xdist
def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile, with the files that use one shared session fixture as one unit of work.

    (xdist's --dist loadgroup would do this with marks, but pytest 9.2 ignores the node ids it
    rewrites, so the marks group nothing.)
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedFixtureScheduling(LoadFileScheduling):
        groups: dict[str, str] = {}

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if path not in self.groups:
                self.groups[path] = shared_fixture_group(path)
            return self.groups[path]

    return SharedFixtureScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def premigrated_sqlite_stores(tmp_path_factory):
    """New SQLite stores made in this process start as a copy of one store MLflow built itself.

    MLflow builds a new SQLite store by running its whole migration history, seconds on a busy
    2-core machine, and most tests start from a new store. The copy is exactly what those
    migrations make (tables, indexes, alembic revision; made once per session, and only when a test
    first needs a store), without the Default experiment, which MLflow then creates as for any new
    store. Commands the tests run in subprocesses (CLI, sweeps) still build their stores the real
    way, among them the parallel first migration that tests/test_sweeps.py guards.
    """
    import sqlite3

    import mlflow.store.db.utils as db_utils
    import mlflow.store.model_registry.sqlalchemy_store as registry_store
    import sqlalchemy

    build = db_utils._initialize_tables
    template: list[Path] = []

    def initialize_tables(engine) -> None:
        url = engine.url
        path = url.database or ""
        if url.get_backend_name() != "sqlite" or path in ("", ":memory:") or path.startswith("file:"):
            return build(engine)
        if not db_utils._is_empty_database(engine):  # a store an earlier MLflow made: migrate it
            return build(engine)
        if not template:
            made = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
            maker = sqlalchemy.create_engine(f"sqlite:///{made}")
            build(maker)
            maker.dispose()
            template.append(made)
        source, target = sqlite3.connect(template[0]), sqlite3.connect(path)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        return None

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(db_utils, "_initialize_tables", initialize_tables)
        patch.setattr(registry_store, "_initialize_tables", initialize_tables)
        yield


@pytest.fixture(scope="session")
def synthetic_counts() -> pd.DataFrame:
    """The committed synthetic world (28 series, 2018-2023), dates parsed."""
    return pd.read_csv(SYNTHETIC_COUNTS, parse_dates=["ds"])


@pytest.fixture(scope="session")
def small_counts(synthetic_counts) -> pd.DataFrame:
    """Four series of the synthetic world in long format with the oracle column."""
    frame = synthetic_counts[synthetic_counts["unique_id"].isin(SMALL_SERIES)]
    return frame[["unique_id", "ds", "y", "y_expected"]].reset_index(drop=True)


@pytest.fixture
def small_counts_csv(tmp_path, small_counts) -> Path:
    path = tmp_path / "counts.csv"
    small_counts.to_csv(path, index=False)
    return path


def compose_config(name: str, overrides: list[str]):
    """Compose a primary config from the project's tree, as the entry point would."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


# model=auto with two cheap candidates and short inner origins (ETS, ARIMA and LightGBM fits cost
# seconds each, and auto fits each candidate at every inner origin).
FAST_AUTO = [
    "~model.candidates.ets",
    "~model.candidates.arima",
    "~model.candidates.lightgbm",
    "model.n_origins=2",
    "model.step=14",
    "model.horizon=14",
]


def fast_forecast_overrides(
    data_path: Path, store_dir: Path, model: str = "lightgbm", recalibrate: str = "never"
) -> list[str]:
    """Overrides that keep a full forecasting run to a few seconds.

    Interval recalibration (``intervals``, on by default) refits the model at several earlier
    origins per fit; it is off here unless a test asks (``recalibrate="auto"``), for the many tests
    that check something else.
    """
    speed = {"lightgbm": ["model.n_estimators=60"], "auto": FAST_AUTO}.get(model, [])
    return [
        f"model={model}",
        *speed,
        f"intervals.recalibrate={recalibrate}",
        f"data.path={data_path}",
        f"tracking.store_dir={store_dir}",
        "backtest.n_origins=2",
        "backtest.horizon=14",
        "backtest.step=7",
        "plot.n_series=2",
    ]
