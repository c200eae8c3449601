"""Safe writes to one MLflow store from parallel jobs: retries on contention and a store-wide lock.

A ``-m`` multirun with the joblib launcher runs several jobs at once against the same SQLite file.
MLflow already waits up to 20 s for SQLite's write lock (``PRAGMA busy_timeout`` on each session)
and retries a clash of version numbers three times; what is left for us is to retry what still
fails after that, and to make the read-decide-write of the ``champion`` alias atomic across jobs.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from mlflow.exceptions import MlflowException

T = TypeVar("T")

# Messages of failures that a later attempt can get past: SQLite's write lock still held after the
# busy timeout, MLflow giving up on a version-number clash, a uniqueness clash on a row written
# concurrently (e.g. an alias set by a job outside the lock).
_TRANSIENT_MESSAGES = ("database is locked", "Model Version creation error", "UNIQUE constraint failed")


def is_transient(error: MlflowException) -> bool:
    """Whether ``error`` is a clash with a concurrent writer that may pass on a later attempt.

    Parameters
    ----------
    error : MlflowException
        What an MLflow client call raised.

    Returns
    -------
    bool
        True for database contention (MLflow maps SQLAlchemy's ``OperationalError`` to
        ``TEMPORARILY_UNAVAILABLE``) and for the clash messages above; False otherwise, so that a
        real mistake (unknown model, bad alias) fails at once.
    """
    if error.error_code == "TEMPORARILY_UNAVAILABLE":
        return True
    return any(message in str(error) for message in _TRANSIENT_MESSAGES)


def retry_transient(action: Callable[[], T], attempts: int = 6, first_delay: float = 0.2) -> T:
    """Call ``action`` until it succeeds, backing off exponentially on transient store errors.

    Parameters
    ----------
    action : callable
        A store call without arguments, e.g. ``lambda: client.set_registered_model_alias(...)``.
        It must be safe to repeat after a failure; a failed SQLite transaction is rolled back, so
        MLflow's single-call writes are.
    attempts : int, default 6
        Calls in total; with the default delays the last one starts about 6 s after the first
        (plus MLflow's own busy wait in each).
    first_delay : float, default 0.2
        Seconds to wait after the first failure; doubled after each further one, with jitter so
        that jobs that clashed once do not clash again in step.

    Returns
    -------
    object
        What ``action`` returned.

    Raises
    ------
    MlflowException
        The last error, when every attempt failed or an error was not transient.
    """
    for attempt in range(attempts):
        try:
            return action()
        except MlflowException as error:
            if attempt == attempts - 1 or not is_transient(error):
                raise
            time.sleep(first_delay * 2**attempt * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


def store_lock_path(tracking_uri: str) -> Path:
    """The lock file that serialises registry decisions on one store.

    Parameters
    ----------
    tracking_uri : str
        The store's URI.

    Returns
    -------
    pathlib.Path
        ``<database>.lock`` beside a SQLite file, so every job using that file finds the same lock
        whatever its working directory; for a server, a file in the temporary folder named after
        the URI, which serialises the jobs of this machine only.
    """
    if tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///").split("?")[0]).resolve()
        return database.with_name(database.name + ".lock")
    digest = hashlib.sha256(tracking_uri.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"ambulance-registry-{digest}.lock"


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` across processes for the duration of the block.

    An ``flock`` is released by the operating system when its holder dies, so a crashed job
    cannot leave the store locked. Windows has no ``fcntl``: there the block runs unlocked, with
    a warning, and parallel jobs get only the per-write retries.

    Parameters
    ----------
    path : pathlib.Path
        The lock file; created (empty) if missing, never deleted, since deleting it while another
        process waits on it would let a third take a different lock.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        warnings.warn("no fcntl: parallel registry writes are not serialised", RuntimeWarning, stacklevel=3)
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
