"""An out-of-core fit whose worker dies fails the job at once instead of hanging (lightgbm.dask has
no fault tolerance: the other workers would wait for the lost one until their socket time-out)."""

from __future__ import annotations

import threading

import pytest

from disposition.distributed import WorkerLostError, watching_workers
from mlops.engine import ClusterError


class FakeClient:
    """Two workers; ``lose_after`` polls of the scheduler, the first one is gone."""

    def __init__(self, lose_after: int | None = None):
        self.workers = {"tcp://a:1": {}, "tcp://b:2": {}}
        self.lose_after = lose_after
        self.polls = 0
        self.restarted: list[str] = []

    def scheduler_info(self):
        self.polls += 1
        if self.lose_after is not None and self.polls > self.lose_after:
            self.workers.pop("tcp://a:1", None)
        return {"workers": dict(self.workers)}

    def restart_workers(self, workers, timeout=None, raise_for_error=True):
        self.restarted = list(workers)


def test_a_lost_worker_fails_the_blocked_fit_with_what_to_do_and_frees_the_others():
    client = FakeClient(lose_after=2)
    never = threading.Event()  # the survivors' fit waits for the lost worker for ever
    with pytest.raises(WorkerLostError, match=r"lost worker\(s\) \['tcp://a:1'\].*nothing was registered"):
        watching_workers(client, never.wait, poll_seconds=0.01)
    assert client.restarted == ["tcp://b:2"]
    assert issubclass(WorkerLostError, ClusterError)  # reported as one line by the entry points


def test_a_survivors_socket_error_is_reported_as_the_lost_worker_once_the_scheduler_sees_it():
    client = FakeClient(lose_after=3)  # the scheduler notices the death after the survivor's error

    def survivor():
        raise RuntimeError("Socket recv error, Connection reset by peer (code: 104)")

    with pytest.raises(WorkerLostError, match="nothing was registered"):
        watching_workers(client, survivor, poll_seconds=0.01)


def test_a_fit_that_finishes_returns_its_value_and_its_own_error_is_raised_as_is():
    assert watching_workers(FakeClient(), lambda: 42, poll_seconds=0.01) == 42

    def broken():
        raise ValueError("bad parameter")

    with pytest.raises(ValueError, match="bad parameter"):
        watching_workers(FakeClient(), broken, poll_seconds=0.01)


def test_killing_a_worker_mid_fit_fails_the_out_of_core_job_and_registers_nothing(tmp_path):
    """A real cluster of its own (its workers are left blocked in LightGBM until restarted, so not
    the session's): one worker is killed once it runs LightGBM's training part."""
    import os
    import signal
    import time

    import pandas as pd
    import psutil
    from mlflow.tracking import MlflowClient

    from disposition.distributed_pipeline import train_distributed
    from mlops.engine import start_engine
    from tests.conftest import compose_config

    calls = pd.read_parquet("data/synthetic/calls.parquet").iloc[:60_000]
    folder = tmp_path / "calls"
    folder.mkdir()
    for k in range(3):
        calls.iloc[k * 20_000 : (k + 1) * 20_000].to_parquet(folder / f"part{k}.parquet", index=False)
    engine = start_engine({"kind": "dask", "n_workers": 2, "threads_per_worker": 1, "memory_limit": "1GiB"})
    client = engine.client
    client.wait_for_workers(2)
    pids = sorted(client.run(os.getpid).values())
    killed: list[int] = []

    def kill_a_training_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for address, keys in client.processing().items():
                if any("train_part" in str(key) for key in keys):
                    pid = client.run(os.getpid, workers=[address])[address]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_training_worker, daemon=True)
    killer.start()
    store = tmp_path / "mlruns"
    overrides = [
        f"calls.path={folder}",
        f"tracking.store_dir={store}",
        f"engine.address={client.scheduler.address}",
        "classifier.n_estimators=100000",  # long enough to be killed mid-fit
        "classifier.learning_rate=0.001",
    ]
    try:
        with pytest.raises(WorkerLostError, match="nothing was registered"):
            train_distributed(compose_config("disposition_distributed", overrides), tmp_path / "run")
        assert killed, "no worker ran LightGBM's training part"
        assert not (tmp_path / "run").exists()
        if (store / "mlflow.db").exists():
            assert MlflowClient(f"sqlite:///{store / 'mlflow.db'}").search_registered_models() == []
    finally:
        pids = sorted(set(pids) | set(client.run(os.getpid).values()))
        engine.close()
    _, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], timeout=20)
    assert not alive, f"worker processes left running: {[p.pid for p in alive]}"
