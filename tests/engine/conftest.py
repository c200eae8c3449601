"""One Dask LocalCluster (2 worker processes on loopback) shared by the engine tests of a session.

It starts on first use and stops at the end; the teardown checks that no worker process is left.
"""

from __future__ import annotations

import os

import psutil
import pytest

from mlops.engine import start_engine

CLUSTER = {"kind": "dask", "n_workers": 2, "threads_per_worker": 1, "memory_limit": "1GiB", "retries": 1}


def worker_pids(engine) -> list[int]:
    """Process ids of the cluster's workers now (a killed worker's replacement has a new one)."""
    return sorted(engine.client.run(os.getpid).values())


@pytest.fixture(scope="session")
def dask_engine():
    engine = start_engine(CLUSTER)
    engine.client.wait_for_workers(2)
    try:
        yield engine
    finally:
        engine.client.wait_for_workers(2, timeout=30)  # a worker killed by a test is back
        pids = worker_pids(engine)
        engine.close()
    _, alive = psutil.wait_procs([psutil.Process(pid) for pid in pids if psutil.pid_exists(pid)], timeout=10)
    assert not alive, f"worker processes left running: {[p.pid for p in alive]}"
