"""Run one bad input through an app's job and judge what the user would have seen and been left with.

A :class:`Case` is a bad input (a file written by the case, Hydra overrides, or both) and what
the refusal must say. :func:`run_case` composes the app's config in-process, as the entry point
would, runs the job against a copy of a store that already has a champion, and returns an
:class:`Outcome`: how the run ended and what it left behind. :func:`check` turns an outcome
into one assertion whose message starts with the outcome's category in brackets (``[silent]``,
``[traceback]``, ``[unclear]``, ``[half-written]``), which ``experiments/reliability/run.py``
counts from pytest's junit file.

What a clear refusal is (issue 10): exactly one :class:`~mlops.errors.UserInputError`, one line,
naming the key or column and what to do; nothing left behind: no MLflow run RUNNING (a run
marked FAILED at most), no new registered version, no alias moved, no tables, plots or reports
in the job's output folder. A few overrides are refused by Hydra itself while composing (a key
that does not exist, an unknown config group option); Hydra's own message is accepted there.
"""

from __future__ import annotations

import functools
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
from hydra.errors import HydraException
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
from omegaconf.errors import OmegaConfBaseException

from mlops.errors import UserInputError
from tests.conftest import ROOT, SMALL_SERIES, SYNTHETIC_COUNTS, compose_config, fast_forecast_overrides
from tests.disposition.conftest import fast_overrides as disposition_fast_overrides

DATA = ROOT / "data"
ONS_2020 = DATA / "external" / "ons_population" / "england_npp2020_principal_5yr.csv"
SYNTHETIC_POPULATION = DATA / "synthetic" / "population.csv"
SYNTHETIC_CALLS = DATA / "synthetic" / "calls.parquet"

CONFIG_NAMES = {"forecast": "forecast", "disposition": "disposition", "project": "project"}

# Python's own words for a programming error: a message carrying them explains nothing to a user
# (issue 10: "'int' object is not iterable", "operands could not be broadcast together").
INTERNAL_PHRASES = re.compile(
    r"Traceback|object is not (iterable|subscriptable|callable)|could not be broadcast|has no attribute"
    r"|unsupported operand|invalid literal for|NoneType|index out of range|out of bounds for"
    r"|KeyError|TypeError|AttributeError|unhashable type|Missing mandatory value"
    r"|cannot convert the series|truth value of an? .* is ambiguous|np\.(float|int|str_)\w*\(|dtype\(",
)

# Some word saying what to do or what is allowed; deliberately broad (other people word the messages).
FIX_HINT = re.compile(
    r"must|should|allowed|expect|set |use |between|at least|at most|positive|one of|need|give|"
    r"check|add |remove|rename|fix|only|convert|choose|instead|e\.g\.|for example|format|pass |"
    r"point|make |provide|supported|valid|cannot|can't|no |not |empty|missing|larger|smaller|"
    r"greater|less|more than|fewer|within|range|per |integer|number|list|file|folder|directory|lower|raise|"
    r"move|earlier|later|shorten|increase|reduce|drop|declare|write|keep|leave|map |relax|switch|exclude",
    re.IGNORECASE,
)

MAX_MESSAGE = 1000  # one line a person reads, not a dump of the data


@dataclass(frozen=True)
class Case:
    """One bad input and what its refusal must say.

    Parameters
    ----------
    id : str
        Test id, e.g. ``counts-1e12-glm``.
    app : str
        ``forecast``, ``disposition`` or ``project``.
    overrides : sequence of str
        Hydra overrides added to the app's fast base overrides (a key given here replaces the
        base's). ``{file}`` is the path the case's ``file`` wrote, ``{tmp}`` the case's folder.
    expect : sequence of str
        Regular expressions (case-insensitive) that must all be found in the message: the key
        or column, the bad value where it has one, a hint of the fix.
    file : callable, optional
        ``file(tmp) -> path`` writes the bad file into the case's folder.
    drop : sequence of str
        Base override keys to leave out (e.g. ``data.path`` to test a missing path).
    forbid : sequence of str
        Regular expressions the message must not contain (e.g. advice that does not apply).
    hydra_may_refuse : bool
        Hydra's own composition error is an acceptable refusal (unknown key or group option).
    """

    id: str
    app: str
    overrides: Sequence[str] = ()
    expect: Sequence[str] = ()
    file: Callable[[Path], Path] | None = None
    drop: Sequence[str] = ()
    forbid: Sequence[str] = ()
    hydra_may_refuse: bool = False


@dataclass
class Outcome:
    """How a case's run ended and what it left behind."""

    case: Case
    tmp: Path | None = None
    error: BaseException | None = None
    at_composition: bool = False
    leftovers: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return "" if self.error is None else str(self.error)

    @property
    def judged(self) -> str:
        """The message with the case's folder blanked out: its name holds the case id, not the app's words."""
        return self.message.replace(str(self.tmp), "<case folder>") if self.tmp else self.message


# --- base overrides: each app's quickest full run ------------------------------------------------


def base_overrides(app: str, store: Path, csv_calls: bool = False) -> list[str]:
    """Overrides that make a clean run of ``app`` take seconds (the cases' starting point)."""
    if app == "forecast":
        return ["data=csv", *fast_forecast_overrides(clean_counts_file(), store, "seasonal_naive")]
    if app == "disposition":
        calls = disposition_fast_overrides(clean_calls_file(), store)
        if csv_calls:
            calls += [
                "calls=csv",
                "calls.date_column=call_time",
                "calls.target.column=safe_remote",
                "calls.exclude=[call_id,closed_remotely,disposition,adverse_outcome,adverse_type,"
                "p_safe_remote_true]",
                "calls.never_remote={category:[C1]}",
            ]
        return calls
    if app == "project":
        synthetic = DATA / "synthetic"
        return [
            f"tracking.store_dir={store}",
            f"history.counts_path={synthetic / 'daily_counts.csv'}",
            f"history.population_path={SYNTHETIC_POPULATION}",
            f"backtest.counts_path={synthetic / 'daily_counts.csv'}",
            f"backtest.population_path={SYNTHETIC_POPULATION}",
            f"population.path={ONS_2020}",
            "n_paths=100",
        ]
    raise ValueError(f"unknown app {app!r}")


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def merged_overrides(case: Case, store: Path, tmp: Path, file: Path | None) -> list[str]:
    """The case's overrides after the base's, the case's replacing any base value for the same key."""
    csv_calls = case.app == "disposition" and "calls=csv" in case.overrides
    base = base_overrides(case.app, store, csv_calls)
    own = [o.replace("{file}", str(file)).replace("{tmp}", str(tmp)) for o in case.overrides]
    replaced = {_key(o) for o in own} | set(case.drop)
    return [o for o in base if _key(o) not in replaced] + own


# --- clean inputs the bad ones are made from ------------------------------------------------------


@functools.cache
def clean_counts() -> pd.DataFrame:
    """Four series of the synthetic world, 2018-2023: ``unique_id, ds, y`` (ds as ISO text)."""
    frame = pd.read_csv(SYNTHETIC_COUNTS)
    return frame[frame["unique_id"].isin(SMALL_SERIES)][["unique_id", "ds", "y"]].reset_index(drop=True)


@functools.cache
def clean_counts_file() -> Path:
    return _cached_file("counts.csv", lambda path: clean_counts().to_csv(path, index=False))


@functools.cache
def clean_calls() -> pd.DataFrame:
    """25,000 synthetic calls (every sixth of the committed 150,000), 2018-2023."""
    return pd.read_parquet(SYNTHETIC_CALLS).iloc[::6].reset_index(drop=True)


@functools.cache
def clean_calls_file() -> Path:
    return _cached_file("calls.parquet", lambda path: clean_calls().to_parquet(path, index=False))


@functools.cache
def clean_population() -> pd.DataFrame:
    """ONS 2020-based England population, 2020-2050, by five-year band."""
    return pd.read_csv(ONS_2020)


@functools.cache
def clean_history_population() -> pd.DataFrame:
    """The synthetic world's population of its seven areas, 2018-2023."""
    return pd.read_csv(SYNTHETIC_POPULATION)


@functools.cache
def clean_history_counts() -> pd.DataFrame:
    return pd.read_csv(SYNTHETIC_COUNTS)


_CACHE_DIR: list[Path] = []


def set_cache_dir(path: Path) -> None:
    """Where clean files shared by every case are written (a session temporary folder)."""
    _CACHE_DIR[:] = [path]


def _cached_file(name: str, write: Callable[[Path], object]) -> Path:
    if not _CACHE_DIR:
        raise RuntimeError("call set_cache_dir first (the corpus conftest does)")
    path = _CACHE_DIR[0] / name
    if not path.exists():
        write(path)
    return path


# --- the store every case starts from -------------------------------------------------------------


def registry_snapshot(db: Path) -> dict:
    """Every registered version (with its run) and every alias in the store.

    A missing database means nothing was ever registered; the client is not asked, as it would
    create one.
    """
    if not db.exists():
        return {"versions": [], "aliases": []}
    client = MlflowClient(f"sqlite:///{db}")
    versions, aliases = [], []
    for model in client.search_registered_models():
        aliases += [(model.name, alias, str(version)) for alias, version in model.aliases.items()]
        for version in client.search_model_versions(f"name='{model.name}'"):
            versions.append((model.name, str(version.version), version.run_id))
    return {"versions": sorted(versions), "aliases": sorted(aliases)}


def run_statuses(db: Path) -> dict[str, str]:
    """Status of every run in every experiment of the store (deleted ones included)."""
    if not db.exists():
        return {}
    client = MlflowClient(f"sqlite:///{db}")
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return {}
    runs = client.search_runs(experiments, run_view_type=ViewType.ALL, max_results=1000)
    return {run.info.run_id: run.info.status for run in runs}


# What each seeded store holds: every case's copy starts from it, so it is read once.
_SEEDED_STATE: dict[Path, tuple[dict, dict[str, str]]] = {}


def copy_store(seeded: Path | None, store: Path) -> None:
    """A private copy of a seeded store's database (its artifacts stay where they are, read-only use)."""
    store.mkdir(parents=True, exist_ok=True)
    if seeded is not None and (seeded / "mlflow.db").exists():
        shutil.copy2(seeded / "mlflow.db", store / "mlflow.db")


def seed_store(app: str, store: Path, out: Path) -> dict:
    """A clean run of ``app`` so the store holds a champion a bad run could displace."""
    overrides = base_overrides(app, store)
    if app == "forecast":  # the 20-day case failed while re-scoring a LightGBM champion
        overrides = [o for o in overrides if not o.startswith("model=")] + [
            "model=lightgbm",
            "model.n_estimators=60",
        ]
    # disposition must end as champion, which needs the test window's bound within the limit: the
    # base overrides' 5 % limit (threshold designed to confirm with probability 0.9) shows it on these
    # 25,000 calls with room (bound 3.50 %), where 3 % no longer gives a champion.
    run_job(app, compose_config(CONFIG_NAMES[app], overrides), out)
    _end_active_runs()
    snapshot = registry_snapshot(store / "mlflow.db")
    _SEEDED_STATE[store] = (snapshot, run_statuses(store / "mlflow.db"))
    if not any(alias == "champion" for _, alias, _ in snapshot["aliases"]):
        raise RuntimeError(f"seeding the {app} store left no champion: {snapshot}")
    return snapshot


# --- running and judging ----------------------------------------------------------------------------


def run_job(app: str, cfg, output_dir: Path):
    """Call the app's job function as its entry point would."""
    if app == "forecast":
        from forecasting.pipeline import train

        return train(cfg, output_dir)
    if app == "disposition":
        from disposition.pipeline import train

        return train(cfg, output_dir)
    if app == "project":
        from forecasting.projection.pipeline import project

        return project(cfg, output_dir, command="python -m forecasting.project")
    raise ValueError(f"unknown app {app!r}")


def _end_active_runs() -> None:
    """A job that raised may leave MLflow's fluent run open; close it so the next case starts clean.

    The store was already inspected (a run left RUNNING is reported before this is called).
    """
    while mlflow.active_run() is not None:
        mlflow.end_run(status="KILLED")


def output_leftovers(output_dir: Path) -> list[str]:
    """Files a failed job left in its output folder, other than Hydra's own (.hydra/, the log)."""
    if not output_dir.exists():
        return []
    left = []
    for path in sorted(output_dir.rglob("*")):
        relative = path.relative_to(output_dir)
        if path.is_dir() or relative.parts[0] == ".hydra" or path.suffix == ".log":
            continue
        left.append(str(relative))
    return left


def left_behind(db: Path, before: dict, runs_before: dict[str, str], output_dir: Path) -> list[str]:
    """What a failed job left: output files, runs RUNNING or not FAILED, new versions, moved aliases."""
    after, runs_after = registry_snapshot(db), run_statuses(db)
    left = [f"output file {name}" for name in output_leftovers(output_dir)]
    for run_id, status in runs_after.items():
        if status == "RUNNING":
            left.append(f"MLflow run {run_id} left RUNNING")
        elif run_id not in runs_before and status != "FAILED":
            left.append(f"new MLflow run {run_id} marked {status} (FAILED at most)")
    new_versions = sorted(set(after["versions"]) - set(before["versions"]))
    if new_versions:
        left.append(f"registered version(s) {[(n, v) for n, v, _ in new_versions]}")
    if after["aliases"] != before["aliases"]:
        left.append(f"aliases moved: {before['aliases']} -> {after['aliases']}")
    return left


def state_before(seeded: Path | None, db: Path) -> tuple[dict, dict[str, str]]:
    """The registry and runs of a fresh copy of ``seeded`` (read once per seeded store)."""
    if seeded in _SEEDED_STATE:
        return _SEEDED_STATE[seeded]
    return registry_snapshot(db), run_statuses(db)


def run_case(case: Case, tmp: Path, seeded: Path | None) -> Outcome:
    """Write the case's file, compose, run the job on a copy of the seeded store, look at what is left."""
    tmp.mkdir(parents=True, exist_ok=True)
    store, output_dir = tmp / "store", tmp / "out"
    copy_store(seeded, store)
    db = store / "mlflow.db"
    before, runs_before = state_before(seeded, db)
    file = case.file(tmp) if case.file else None
    outcome = Outcome(case, tmp)
    try:
        cfg = compose_config(CONFIG_NAMES[case.app], merged_overrides(case, store, tmp, file))
    except (HydraException, OmegaConfBaseException) as error:
        outcome.error, outcome.at_composition = error, True
        return outcome
    try:
        run_job(case.app, cfg, output_dir)
    except Exception as error:  # noqa: BLE001 - judging every way a job can end is the point
        outcome.error = error
    outcome.leftovers = left_behind(db, before, runs_before, output_dir)
    _end_active_runs()
    return outcome


def problems(outcome: Outcome) -> tuple[list[str], list[str]]:
    """The outcome's categories and what is wrong (no categories: a clear refusal that left nothing).

    Categories: ``silent`` (accepted, no error), ``traceback`` (an error that is not a
    UserInputError: the user sees a stack trace), ``unclear`` (a UserInputError that is not one
    line, lacks the key or a hint, or speaks Python), ``half-written`` (anything left behind).
    """
    case, message = outcome.case, outcome.judged
    tags, wrong = [], []
    if outcome.error is None:
        tags.append("silent")
        wrong.append("the bad input was accepted: the run finished without an error")
    elif outcome.at_composition:
        if not case.hydra_may_refuse:
            tags.append("unclear")
            wrong.append(
                "Hydra refused the overrides while composing (a key or option the case needs is missing)"
            )
        else:
            lacking = [p for p in case.expect[:1] if not re.search(p, message, re.IGNORECASE)]
            if lacking:
                tags.append("unclear")
                wrong.append(f"Hydra's message lacks {lacking}")
    elif not isinstance(outcome.error, UserInputError):
        tags.append("traceback")
        wrong.append(f"{type(outcome.error).__name__} is not a UserInputError")
    else:
        if "\n" in message.strip() or not message.strip():
            wrong.append("message is not exactly one line")
        if len(message) > MAX_MESSAGE:
            wrong.append(f"message is {len(message)} characters long")
        wrong += [f"lacks /{p}/" for p in case.expect if not re.search(p, message, re.IGNORECASE)]
        wrong += [f"contains /{p}/" for p in case.forbid if re.search(p, message, re.IGNORECASE)]
        internal = INTERNAL_PHRASES.search(message)
        if internal:
            wrong.append(f"speaks Python, not the user's language ({internal.group(0)!r})")
        if not FIX_HINT.search(message):
            wrong.append("gives no hint of what to fix")
        if wrong:
            tags.append("unclear")
    if outcome.leftovers and outcome.error is not None:  # a finished run naturally leaves its outputs
        tags.append("half-written")
        wrong += outcome.leftovers
    return tags, wrong


def check(outcome: Outcome) -> None:
    """Assert a clear one-line refusal that left nothing behind; the failure starts with its categories."""
    tags, wrong = problems(outcome)
    if not tags:
        return
    shown = outcome.message.replace("\n", " | ")[:400]
    kind = "" if outcome.error is None else f"{type(outcome.error).__name__}: "
    raise AssertionError(
        "".join(f"[{tag}]" for tag in tags)
        + f" {outcome.case.id} ({outcome.case.app}): {'; '.join(wrong)} -- {kind}{shown!r}"
    )


# --- writing the bad files (generated per case, never committed) ----------------------------------

Frame = Callable[[], pd.DataFrame]


def edited(frame: Frame, edit: Callable[[pd.DataFrame], pd.DataFrame | None]) -> Frame:
    """``frame`` with ``edit`` applied to a copy (``edit`` may change it in place and return None)."""

    def make() -> pd.DataFrame:
        copy = frame().copy()
        result = edit(copy)
        return copy if result is None else result

    return make


def set_value(frame: Frame, row: int, column: str, value) -> Frame:
    """``frame`` with one cell replaced (the column becomes text if the value is text)."""

    def edit(copy: pd.DataFrame) -> None:
        if isinstance(value, str) and copy[column].dtype != object:
            copy[column] = copy[column].astype(object)
        elif isinstance(value, float) and pd.api.types.is_integer_dtype(copy[column].dtype):
            copy[column] = copy[column].astype("float64")
        copy.loc[row, column] = value

    return edited(frame, edit)


def csv_file(frame: Frame, name: str = "data.csv", **to_csv) -> Callable[[Path], Path]:
    """A case file: ``frame`` written as CSV (``to_csv`` keywords: sep, encoding, date_format ...)."""

    def write(tmp: Path) -> Path:
        path = tmp / name
        frame().to_csv(path, index=False, **to_csv)
        return path

    return write


def parquet_file(frame: Frame, name: str = "data.parquet") -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        path = tmp / name
        frame().to_parquet(path, index=False)
        return path

    return write


def text_file(text: str, name: str = "data.csv", encoding: str = "utf-8") -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        path = tmp / name
        path.write_text(text, encoding=encoding)
        return path

    return write


def bytes_file(data: bytes, name: str = "data.csv") -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path

    return write


def directory(name: str = "data.csv") -> Callable[[Path], Path]:
    """A folder where a file is expected (named like one, as a user's typo would be)."""

    def write(tmp: Path) -> Path:
        path = tmp / name
        (path / "inside").mkdir(parents=True)
        return path

    return write


def garbage(size: int = 4096, seed: int = 10) -> bytes:
    """Random bytes (seeded): an image, a zip or a corrupted download where a table should be."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def header_only(frame: Frame) -> Frame:
    return lambda: frame().iloc[:0]


def csv_line(row: int) -> str:
    """A pattern for the file line of data row ``row`` (line 1 is the header), or the row itself."""
    return rf"\b({row + 2}|{row + 1})\b"
