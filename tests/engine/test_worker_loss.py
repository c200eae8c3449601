"""A job whose workers keep dying fails with one clear line and leaves nothing registered."""

from __future__ import annotations

import os

import pytest
from mlflow.tracking import MlflowClient

from forecasting.models import SeasonalNaive
from forecasting.pipeline import train
from mlops.engine import ClusterError
from tests.conftest import compose_config, fast_forecast_overrides


class DyingOnWorkers(SeasonalNaive):
    """Seasonal naive that kills the process it is fitted in when that is a Dask worker."""

    def fit(self, df):
        from distributed import get_worker

        try:
            get_worker()
        except ValueError:  # not on a worker: behave
            return super().fit(df)
        os._exit(1)


@pytest.mark.slow
def test_workers_dying_on_every_try_fail_the_job_before_anything_is_registered(
    dask_engine, small_counts_csv, tmp_path
):
    store = tmp_path / "store"
    overrides = [
        *fast_forecast_overrides(small_counts_csv, store, "seasonal_naive"),
        "model._target_=tests.engine.test_worker_loss.DyingOnWorkers",
        "engine=dask",
        f"engine.address={dask_engine.client.scheduler.address}",
    ]
    with pytest.raises(
        ClusterError, match="^the Dask cluster lost the job: workers died .*nothing was registered"
    ):
        train(compose_config("forecast", overrides), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    if (store / "mlflow.db").exists():
        assert MlflowClient(f"sqlite:///{store / 'mlflow.db'}").search_registered_models() == []
    dask_engine.client.wait_for_workers(2, timeout=60)  # the nannies bring the workers back
