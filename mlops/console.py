"""What an app prints also goes to its job's log file, so the log holds what the user saw.

Hydra writes only ``logging`` records to ``<output_dir>/<job name>.log``; the apps talk to their
users with ``print`` (results, the one-line ``error: ...`` of
:func:`mlops.errors.report_user_errors`, library warnings, progress bars), so without this the
file stayed empty, also in the copy logged to MLflow. The entry points wrap their job with
:func:`log_console`; it works the same for single runs and for each job of a (joblib) multirun,
because it runs inside the job, in whichever process executes it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

F = TypeVar("F", bound=Callable)

# Terminal control sequences (cursor moves of nested tqdm bars, colours): meaningless in a file.
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _LogFile:
    """Appends whole lines to the log, from any stream or thread, and flushes each one.

    Flushing per line keeps the file complete if the job is killed, and whole-line appends
    interleave cleanly with the lines Hydra's own file handler appends to the same file.
    """

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle
        self._lock = threading.Lock()

    def write_lines(self, lines: list[str]) -> None:
        if lines:
            with self._lock:
                self._handle.write("".join(f"{line}\n" for line in lines))
                self._handle.flush()


class _Tee:
    """A text stream that writes through to ``stream`` and keeps the final state of each line.

    A progress bar redraws its line with carriage returns dozens of times a second; a terminal
    shows only the last drawing, and so does the log: text before the last ``\\r`` of a line is
    dropped, and a line a bar left blank (it erased itself) is not written.
    """

    def __init__(self, stream: IO[str], log: _LogFile) -> None:
        self._stream = stream
        self._log = log
        self._pending = ""

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        # Blank lines the program printed stay; lines a bar erased with spaces go.
        kept = [_final_state(line) for line in lines if "\r" not in line or _final_state(line).strip()]
        self._log.write_lines(kept)
        # Keep only what can still show: a bar redrawn for an hour must not grow the buffer.
        cut = self._pending.rfind("\r", 0, len(self._pending) - 1)
        if cut > 0:
            self._pending = self._pending[cut:]
        return written

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def close_line(self) -> None:
        """Write a last line that never got its newline."""
        line = _final_state(self._pending)
        self._pending = ""
        if line.strip():
            self._log.write_lines([line])

    def __getattr__(self, name: str):
        # encoding, isatty, fileno, buffer, ...: behave as the real stream, so libraries that
        # look (tqdm, colour detection) act as they would without the log.
        return getattr(self._stream, name)


def _final_state(line: str) -> str:
    """What a terminal would show of ``line`` once every carriage return has redrawn it."""
    return _CONTROL.sub("", line.removesuffix("\r").rsplit("\r", 1)[-1]).rstrip()


@contextmanager
def tee_output(path: Path) -> Iterator[Path]:
    """Copy everything written to ``sys.stdout`` and ``sys.stderr`` into ``path`` while inside.

    The file is appended to (Hydra's job logging writes to the same file). An exception other
    than ``SystemExit`` leaves its traceback in the file as well, since Hydra prints it only after
    the job, when the streams are restored.

    Parameters
    ----------
    path : Path
        The log file; its folder is created if needed.

    Yields
    ------
    Path
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", errors="replace") as handle:
        log = _LogFile(handle)
        saved = sys.stdout, sys.stderr
        out, err = _Tee(sys.stdout, log), _Tee(sys.stderr, log)
        sys.stdout, sys.stderr = out, err
        try:
            yield path
        except SystemExit:
            raise
        except BaseException as error:
            _finish(out, err)  # what was printed comes before the traceback
            log.write_lines(
                "".join(traceback.format_exception(type(error), error, error.__traceback__)).splitlines()
            )
            raise
        finally:
            _finish(out, err)
            sys.stdout, sys.stderr = saved


def _finish(*tees: _Tee) -> None:
    for tee in tees:
        tee.flush()
        tee.close_line()


def job_log_path() -> Path:
    """The current Hydra job's log file: ``<output_dir>/<job name>.log``, as Hydra names it."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    return Path(hydra_cfg.runtime.output_dir) / f"{hydra_cfg.job.name}.log"


def log_console(func: F) -> F:
    """Wrap a Hydra task function so what it prints also lands in its job's log file.

    Place it between ``@hydra.main`` and :func:`mlops.errors.report_user_errors`, so the one-line
    error is inside the copy::

        @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="forecast")
        @log_console
        @report_user_errors
        def main(cfg): ...
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with quiet_mlflow(), tee_output(job_log_path()):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def attach_log_to_run(tracking_uri: str, run_id: str, artifact_path: str) -> None:
    """Replace the run's copy of the job log with the file as it is now, summary lines included.

    The pipelines log their output folder while the run is open, before the entry point prints
    its summary; this uploads the finished log over that copy. A failure here only warns: the
    model and its run are already complete.

    Parameters
    ----------
    tracking_uri : str
        The store the run is in.
    run_id : str
        The job's MLflow run.
    artifact_path : str
        The run's artifact folder the log belongs in (where the pipeline put the job's files).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from mlops.concurrency import retry_transient

    path = job_log_path()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        client = MlflowClient(tracking_uri)
        retry_transient(lambda: client.log_artifact(run_id, str(path), artifact_path))
    except (MlflowException, OSError) as error:
        print(f"warning: the log was not copied to MLflow run {run_id}: {error}", file=sys.stderr)


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Silence MLflow's routine INFO lines and artifact download bars while inside, unless asked for.

    "Validating input example against model signature", "Creating initial MLflow database tables"
    and a "Downloading artifacts" bar per model load say nothing a user must act on and bury the
    app's own lines. MLflow's warnings and errors still show. MLflow's own variables bring them
    back: ``MLFLOW_LOGGING_LEVEL=INFO``, ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=true``. Off a
    terminal, library bars (tqdm, e.g. the backtest's) are off too: they redraw one line with
    carriage returns, noise in a piped log; the steps print plain lines instead (:func:`stage`).
    Everything is restored on exit, so a job run in-process (tests, notebooks) leaves no trace.
    """
    logger = logging.getLogger("mlflow")
    saved_level = logger.level
    settings = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    if not interactive():
        settings["TQDM_DISABLE"] = "1"
    saved_env = {key: os.environ.get(key) for key in settings}
    for key, value in settings.items():
        os.environ.setdefault(key, value)
    if not os.environ.get("MLFLOW_LOGGING_LEVEL"):
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(saved_level)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def interactive(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (stderr by default) is a terminal, where a redrawn bar makes sense."""
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced by an object without isatty
        return False


@contextmanager
def stage(description: str, stream: IO[str] | None = None, refresh: float = 1.0) -> Iterator[None]:
    """Show that a long step is running, with its elapsed time.

    On a terminal, a bar with a running clock (tqdm, redrawn every ``refresh`` seconds by a
    background thread, as a single opaque call such as a model fit gives no progress of its
    own) that stays as ``<description>: done in 12.3 s``. Elsewhere (a pipe, a log file, CI),
    two plain lines: ``<description> ...`` and ``<description>: done in 12.3 s``.

    Parameters
    ----------
    description : str
        What is running, e.g. "final fit (ensemble, 28 series)".
    stream : text stream, optional
        Where to write: by default the bar goes to stderr on a terminal and the plain lines to
        stdout, so that stderr keeps only what went wrong (a failed run's one ``error:`` line).
    refresh : float, default 1.0
        Seconds between redraws on a terminal.
    """
    stream = stream if stream is not None else (sys.stderr if interactive() else sys.stdout)
    started = time.monotonic()
    if not interactive(stream):
        print(f"{description} ...", file=stream, flush=True)
        yield
        print(f"{description}: done in {time.monotonic() - started:.1f} s", file=stream, flush=True)
        return
    from tqdm import tqdm

    bar = tqdm(total=None, desc=description, file=stream, bar_format="{desc}: {elapsed}", leave=False)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(refresh):
            bar.refresh()

    clock = threading.Thread(target=tick, daemon=True)
    clock.start()
    try:
        yield
    finally:
        stop.set()
        clock.join()
        bar.close()
    print(f"{description}: done in {time.monotonic() - started:.1f} s", file=stream, flush=True)


def progress(
    items: Iterable, description: str, total: int | None = None, stream: IO[str] | None = None
) -> Iterator:
    """Iterate over ``items`` showing progress: a tqdm bar on a terminal (stderr), otherwise a plain
    line on stdout at about every tenth of the way and at the end (``<description>: 3/10``)."""
    stream = stream if stream is not None else (sys.stderr if interactive() else sys.stdout)
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    if interactive(stream):
        from tqdm import tqdm

        yield from tqdm(items, desc=description, total=total, file=stream, leave=False)
        return
    started = time.monotonic()
    every = max(1, (total or 10) // 10)
    done = 0
    for item in items:
        yield item
        done += 1
        if done % every == 0 or done == total:
            of = f"/{total}" if total else ""
            print(f"{description}: {done}{of} ({time.monotonic() - started:.0f} s)", file=stream, flush=True)
