"""Where the work runs: here, one task after another, or on a Dask cluster.

Pipelines hand an engine plain functions (pandas in, pandas out) and a list of small task
descriptions; the engine runs ``fn(task, **shared)`` for each task and returns the results in task
order. Library code never sees Dask: it takes the engine's :meth:`Engine.map` as a callable.

- ``LocalEngine``: a loop, today's behaviour, no Dask imported.
- ``DaskEngine``: a ``distributed.Client`` on a ``LocalCluster`` started here (worker processes on
  this machine) or on an existing cluster's scheduler address, optionally over TLS. The large
  ``shared`` arguments (e.g. the whole history) are sent to the cluster once, not once per task,
  in a task that is rerun if the worker holding it dies.

A task that raises is retried ``retries`` times; tasks on a worker that dies are rescheduled by the
scheduler itself (up to ``distributed.scheduler.allowed-failures`` deaths per task). When a job
still cannot finish, :class:`ClusterError` says so in one line, and the caller has written and
registered nothing yet (pipelines map before they log or register).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops.errors import UserInputError


class ClusterError(UserInputError):
    """The cluster could not be reached or lost the job (e.g. workers dying for lack of memory)."""


@dataclass(frozen=True)
class EngineSettings:
    """The ``engine`` config group as plain values (see conf/engine/*.yaml)."""

    kind: str = "local"
    address: str | None = None
    n_workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str | int | None = "4GiB"
    retries: int = 2
    series_per_task: int | None = None
    connect_timeout: int = 30
    tls: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> EngineSettings:
        values = dict(values or {})
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        known["tls"] = dict(values.get("tls") or {})
        return cls(**known)


class LocalEngine:
    """Runs every task here, in order: the default, identical to code without an engine."""

    kind = "local"

    def __init__(self, settings: EngineSettings | None = None):
        self.settings = settings or EngineSettings()

    def map(self, fn: Callable, tasks: Sequence, shared: Mapping[str, Any] | None = None) -> list:
        """``[fn(task, **shared) for task in tasks]``."""
        return [fn(task, **(shared or {})) for task in tasks]

    def describe(self) -> str:
        return "local (one process)"

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DaskEngine:
    """Runs tasks on a Dask cluster through a ``distributed.Client``.

    Parameters
    ----------
    client : distributed.Client
        Connected client. The engine closes it (and a cluster it started) on :meth:`close`.
    retries : int
        Times a task that raised is run again before the job fails.
    cluster : optional
        The ``LocalCluster`` this engine started, closed with it.
    """

    kind = "dask"

    def __init__(self, client, retries: int = 2, cluster=None, settings: EngineSettings | None = None):
        self.client = client
        self.retries = int(retries)
        self.cluster = cluster
        self.settings = settings or EngineSettings(kind="dask")

    def map(self, fn: Callable, tasks: Sequence, shared: Mapping[str, Any] | None = None) -> list:
        """Run ``fn(task, **shared)`` on the cluster for each task; results in task order."""
        from distributed.client import FutureCancelledError
        from distributed.scheduler import KilledWorker

        if not tasks:
            return []
        # Each shared value travels once, inside one task that returns it, not pickled into every
        # task. Unlike `scatter`, such a task can be rerun when the worker holding its result dies,
        # so losing a worker loses no data (the scheduler keeps the value until the job ends).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Large object", category=UserWarning)
            held = {
                name: self.client.submit(_shared_value, value, pure=False, retries=self.retries)
                for name, value in (shared or {}).items()
            }
        futures = self.client.map(fn, list(tasks), **held, retries=self.retries, pure=False)
        try:
            return self.client.gather(futures)
        except (KilledWorker, FutureCancelledError) as error:
            task = getattr(error, "task", None) or getattr(error, "key", error)
            raise ClusterError(
                f"the Dask cluster lost the job: workers died while running {task!r} "
                "(often for lack of memory); nothing was registered. Raise engine.memory_limit, use "
                "smaller tasks (engine.series_per_task) or more workers, and run it again"
            ) from error
        finally:
            self.client.cancel([*futures, *held.values()])

    def worker_count(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def describe(self) -> str:
        where = self.settings.address or "a LocalCluster on this machine"
        return f"dask ({self.worker_count()} workers, {where})"

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_engine(settings: EngineSettings | Mapping[str, Any] | None = None) -> LocalEngine | DaskEngine:
    """The engine the settings describe: a loop here, a new LocalCluster, or a cluster address.

    Use it as a context manager so a cluster started here stops with the job.
    """
    if not isinstance(settings, EngineSettings):
        settings = EngineSettings.from_mapping(settings)
    if settings.kind == "local":
        return LocalEngine(settings)
    from distributed import Client, LocalCluster

    if settings.address is None:
        cluster = LocalCluster(
            n_workers=int(settings.n_workers),
            threads_per_worker=int(settings.threads_per_worker),
            memory_limit=settings.memory_limit,
            processes=True,
            host="127.0.0.1",  # scheduler, workers and the scheduler's status endpoint: loopback only
            dashboard_address=None,  # no dashboard
            silence_logs=logging.ERROR,
        )
        return DaskEngine(Client(cluster), settings.retries, cluster, settings)
    try:
        client = Client(
            settings.address, security=tls_security(settings.tls), timeout=int(settings.connect_timeout)
        )
    except (OSError, TimeoutError) as error:
        raise ClusterError(
            f"engine.address={settings.address}: cannot reach the Dask scheduler ({error}); check the "
            "address and port, that the scheduler is running, and engine.tls for a tls:// address"
        ) from error
    return DaskEngine(client, settings.retries, None, settings)


def tls_security(tls: Mapping[str, Any]):
    """A ``distributed.Security`` from the ``engine.tls`` block, or None when no file is given."""
    if not any(tls.get(key) for key in ("ca_file", "cert", "key")):
        return None
    from distributed.security import Security

    return Security(
        tls_ca_file=tls.get("ca_file"),
        tls_client_cert=tls.get("cert"),
        tls_client_key=tls.get("key"),
        require_encryption=bool(tls.get("require_encryption", True)),
    )


def _shared_value(value: Any) -> Any:
    """The task that holds a shared argument on the cluster (see :meth:`DaskEngine.map`)."""
    return value
